"""Rate limits per API key and team: requests per minute/hour/day, tokens per
minute and concurrent requests.

`acquire` checks every limit of every subject (a key and its team) and counts
the request only if all of them allow it (all-or-nothing). Tokens are charged
after the response with `charge_tokens`; a request is refused while the tokens
already used in the sliding minute reach the limit.

Windows are sliding, estimated from two fixed windows as
`previous * (1 - elapsed_fraction) + current`: O(1) memory per limit and
smooth at window edges. This module holds the arithmetic shared by every
backend and the in-process backend; `connectors.state.redis_ratelimit` does
the same atomically in Redis.

Headers use OpenAI's names (`x-ratelimit-{limit,remaining,reset}-{requests,
tokens}`) from the tightest limit; resets read like OpenAI's ("850ms", "12s",
"1m3s", "2h0m5s") and tell when that window is back to its initial state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from engine.errors import RateLimited
from engine.schemas.governance import RateLimits

WINDOWS: dict[str, float] = {"minute": 60.0, "hour": 3600.0, "day": 86400.0}
# Retry-After for a refused concurrency slot: nothing says when one frees.
CONCURRENCY_RETRY_S = 1.0

LimitKind = Literal["requests", "tokens", "concurrent"]


@dataclass(frozen=True, slots=True)
class Subject:
    """What a limit applies to: `key` is "key:<id>" or "team:<id>"."""

    key: str
    limits: RateLimits

    @classmethod
    def api_key(cls, key_id: str, limits: RateLimits) -> Subject:
        return cls(f"key:{key_id}", limits)

    @classmethod
    def team(cls, team_id: str, limits: RateLimits) -> Subject:
        return cls(f"team:{team_id}", limits)


class Admission:
    """An admitted request: its rate-limit headers and its concurrency slots.

    `release` (or leaving `async with`) frees the slots; calling it again does
    nothing. An admission is always released on the backend that granted it.
    """

    __slots__ = ("_release", "_released", "headers")

    def __init__(
        self, headers: dict[str, str], release: Callable[[], Awaitable[None]] | None = None
    ):
        self.headers = headers
        self._release = release
        self._released = release is None

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        assert self._release is not None
        await self._release()

    async def __aenter__(self) -> Admission:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


# Shared by every request whose subjects have no limits; never mutate its headers.
NO_LIMITS = Admission({})


class RateLimiter(Protocol):
    name: str

    async def acquire(self, subjects: Sequence[Subject]) -> Admission:
        """Admit one request for all `subjects` or raise `RateLimited` (counting nothing)."""

    async def charge_tokens(self, subjects: Sequence[Subject], tokens: int) -> None:
        """Add the tokens a response used to the subjects' token windows."""


# --- the arithmetic every backend shares ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit of one subject, as a backend checks it."""

    subject: str
    kind: LimitKind
    window: str | None  # "minute" | "hour" | "day"; None for concurrency
    limit: int
    length: float  # window length in seconds; 0 for concurrency
    suffix: str  # names the counter: rpm, rph, rpd, tpm, conc

    def describe(self) -> str:
        if self.kind == "concurrent":
            return f"{self.limit} concurrent requests"
        return f"{self.limit} {self.kind} per {self.window}"


_REQUEST_LIMITS = (
    ("requests_per_minute", "minute", "rpm"),
    ("requests_per_hour", "hour", "rph"),
    ("requests_per_day", "day", "rpd"),
)


def has_limits(subjects: Sequence[Subject]) -> bool:
    for subject in subjects:
        lim = subject.limits
        if (lim.requests_per_minute or lim.requests_per_hour or lim.requests_per_day
                or lim.tokens_per_minute or lim.max_concurrent):
            return True
    return False


def plan(subjects: Sequence[Subject], windows: Mapping[str, float]) -> list[Limit]:
    """The limits to check, in a stable order (subjects as given, duplicates dropped)."""
    limits: list[Limit] = []
    seen: set[str] = set()
    for subject in subjects:
        if subject.key in seen:
            continue
        seen.add(subject.key)
        lim = subject.limits
        for attr, window, suffix in _REQUEST_LIMITS:
            value = getattr(lim, attr)
            if value is not None:
                limits.append(Limit(subject.key, "requests", window, value, windows[window],
                                    suffix))
        if lim.tokens_per_minute is not None:
            limits.append(Limit(subject.key, "tokens", "minute", lim.tokens_per_minute,
                                windows["minute"], "tpm"))
        if lim.max_concurrent is not None:
            limits.append(Limit(subject.key, "concurrent", None, lim.max_concurrent, 0.0,
                                "conc"))
    return limits


def token_limits(subjects: Sequence[Subject], windows: Mapping[str, float]) -> list[Limit]:
    return [lim for lim in plan(subjects, windows) if lim.kind == "tokens"]


@dataclass(slots=True)
class Usage:
    """A limit's counters at one instant: the previous and current fixed windows
    (for concurrency, `current` is the slots held) and how far into the current
    window we are."""

    limit: Limit
    previous: float
    current: float
    elapsed: float  # fraction of the current window gone, in [0, 1)

    @property
    def estimate(self) -> float:
        if self.limit.kind == "concurrent":
            return self.current
        return self.previous * (1.0 - self.elapsed) + self.current

    def refuses(self) -> bool:
        """Would this limit refuse one more request? (Redis's script mirrors this.)"""
        if self.limit.kind == "requests":
            return self.estimate + 1 > self.limit.limit
        return self.estimate >= self.limit.limit

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.limit.limit - self.estimate + 1e-9))

    @property
    def reset(self) -> float:
        """Seconds until the window's estimate is back to zero."""
        length, left = self.limit.length, (1.0 - self.elapsed) * self.limit.length
        if self.limit.kind == "concurrent" or (self.current <= 0 and self.previous <= 0):
            return 0.0
        return left + length if self.current > 0 else left

    def retry_after(self) -> float:
        """Seconds until this limit admits one more request."""
        if self.limit.kind == "concurrent":
            return CONCURRENCY_RETRY_S
        # Requests need room for one more; tokens need the estimate below the limit.
        allowed = self.limit.limit - 1 if self.limit.kind == "requests" else self.limit.limit - 1e-3
        prev, cur, frac, length = self.previous, self.current, self.elapsed, self.limit.length
        if prev * (1 - frac) + cur <= allowed:
            return 0.0
        if cur <= allowed:  # the previous window's share decays enough within this one
            return max(0.0, (1 - (allowed - cur) / prev) - frac) * length
        # Wait for the next window, where the current count becomes the decaying one.
        return (1 - frac) * length + max(0.0, 1 - max(allowed, 0.0) / cur) * length


def format_reset(seconds: float) -> str:
    """OpenAI's style: "0s", "850ms", "12s", "1m3s", "2h0m5s"."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000 - 1e-6))}ms"
    total = math.ceil(seconds - 1e-6)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rate_headers(usages: Sequence[Usage]) -> dict[str, str]:
    """x-ratelimit-* for requests and tokens, each from its tightest limit."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        candidates = [u for u in usages if u.limit.kind == kind]
        if not candidates:
            continue
        tightest = min(candidates, key=lambda u: (u.remaining, -u.reset))
        headers[f"x-ratelimit-limit-{kind}"] = str(tightest.limit.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(tightest.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = format_reset(tightest.reset)
    return headers


def refusal(refused: Sequence[Usage], usages: Sequence[Usage]) -> RateLimited:
    """The error for a refused request, naming the limit that frees last."""
    waits = [(u.retry_after(), u) for u in refused]
    wait, binding = max(waits, key=lambda item: item[0])
    who = binding.limit.subject.replace(":", " ", 1)
    error = RateLimited(
        f"rate limit of {who} exceeded: {binding.limit.describe()}",
        retry_after=max(wait, 0.001),
    )
    # api.errors.response_for adds these to the 429 next to Retry-After.
    error.headers = rate_headers(usages)  # type: ignore[attr-defined]
    return error


# --- in-process backend -----------------------------------------------------------------


class MemoryRateLimiter:
    """Exact within one process (no await between check and count), and the
    fallback while Redis is unreachable.

    `windows` overrides window lengths in seconds (tests use short ones) and
    `clock` the time source.
    """

    name = "memory"
    _SWEEP_EVERY = 4096

    def __init__(
        self,
        *,
        windows: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.windows = {**WINDOWS, **(windows or {})}
        self.clock = clock
        # counter name -> [window index, previous count, current count, window length]
        self._windows: dict[str, list[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._ops = 0

    async def acquire(self, subjects: Sequence[Subject]) -> Admission:
        if not has_limits(subjects):
            return NO_LIMITS
        now = self.clock()
        usages = [self._usage(limit, now) for limit in plan(subjects, self.windows)]
        refused = [u for u in usages if u.refuses()]
        if refused:
            raise refusal(refused, usages)
        held: list[str] = []
        for usage in usages:
            name = _name(usage.limit)
            if usage.limit.kind == "requests":
                self._windows[name][2] += 1
                usage.current += 1
            elif usage.limit.kind == "concurrent":
                self._in_flight[name] = self._in_flight.get(name, 0) + 1
                usage.current += 1
                held.append(name)
        self._sweep(now)
        headers = rate_headers(usages)
        if not held:
            return Admission(headers)

        async def release() -> None:
            for name in held:
                count = self._in_flight.get(name, 0) - 1
                if count > 0:
                    self._in_flight[name] = count
                else:
                    self._in_flight.pop(name, None)

        return Admission(headers, release)

    async def charge_tokens(self, subjects: Sequence[Subject], tokens: int) -> None:
        if tokens <= 0 or not has_limits(subjects):
            return
        now = self.clock()
        for limit in token_limits(subjects, self.windows):
            self._usage(limit, now)  # rolls the windows forward
            self._windows[_name(limit)][2] += tokens

    def _usage(self, limit: Limit, now: float) -> Usage:
        name = _name(limit)
        if limit.kind == "concurrent":
            return Usage(limit, 0.0, self._in_flight.get(name, 0), 0.0)
        position = now / limit.length
        index = math.floor(position)
        entry = self._windows.get(name)
        if entry is None or entry[0] < index - 1 or entry[3] != limit.length:
            entry = [index, 0, 0, limit.length]
        elif entry[0] == index - 1:
            entry = [index, entry[2], 0, limit.length]
        self._windows[name] = entry
        return Usage(limit, entry[1], entry[2], position - index)

    def _sweep(self, now: float) -> None:
        # Counters of idle subjects are dropped now and then to bound memory.
        self._ops += 1
        if self._ops % self._SWEEP_EVERY:
            return
        stale = [name for name, (index, _, _, length) in self._windows.items()
                 if index < math.floor(now / length) - 1]
        for name in stale:
            del self._windows[name]


def _name(limit: Limit) -> str:
    return f"{limit.subject}:{limit.suffix}"
