"""Rate limits in Redis, in process memory while Redis is unreachable.

Same degraded-mode rules as `connectors.state.failover.FailoverState`: an
outage switches to the in-process limiter at once, logs once and sets the
`headrace_degraded{component="redis"}` gauge; after `retry_s` the next call
tries Redis again and stays there if it answers. Refusals (`RateLimited`) are
answers, not outages. An admission is released on the backend that granted it.

`Outage` is the bookkeeping of one such fallback, meant to be shared by every
Redis-backed part: the gauge stays 1 while any of them is degraded.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from connectors.state.redis_ratelimit import OUTAGE, RedisRateLimiter
from engine import metrics
from engine.errors import RateLimited
from engine.governance.ratelimit import NO_LIMITS, Admission, MemoryRateLimiter, Subject, has_limits
from engine.logs import get_logger

T = TypeVar("T")

# component -> the owners currently degraded on it
_degraded_owners: dict[str, weakref.WeakSet[Outage]] = {}


class Outage:
    """Degraded-mode state of one client of a shared dependency.

    `active()` says whether to skip the dependency for now; `down(error)` and
    `up()` record what the last attempt found, logging and moving the
    `headrace_degraded` gauge only on transitions.
    """

    def __init__(
        self, *, component: str = "redis", retry_s: float = 5.0, logger: Any = None,
        what: str = "shared state",
    ):
        self.component = component
        self.retry_s = retry_s
        self.log = logger or get_logger("headrace.state")
        self.what = what
        self.degraded = False
        self.last_error: str | None = None
        self._retry_at = 0.0

    def active(self) -> bool:
        return self.degraded and time.monotonic() < self._retry_at

    def down(self, error: BaseException) -> None:
        self._retry_at = time.monotonic() + self.retry_s
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        if self.degraded:
            return
        self.degraded = True
        _degraded_owners.setdefault(self.component, weakref.WeakSet()).add(self)
        metrics.degraded.labels(self.component).set(1)
        self.log.error(f"{self.component} unreachable; {self.what} served in-process "
                       "(degraded mode)", error=self.last_error)

    def up(self) -> None:
        if not self.degraded:
            return
        self.degraded = False
        self.last_error = None
        owners = _degraded_owners.setdefault(self.component, weakref.WeakSet())
        owners.discard(self)
        if not owners:
            metrics.degraded.labels(self.component).set(0)
        self.log.warning(f"{self.component} reachable again; {self.what} shared again")


class FailoverRateLimiter:
    name = "redis"

    def __init__(
        self,
        redis: RedisRateLimiter,
        memory: MemoryRateLimiter | None = None,
        *,
        retry_s: float = 5.0,
    ):
        self.redis = redis
        self.memory = memory or MemoryRateLimiter(windows=redis.windows)
        self.outage = Outage(retry_s=retry_s, logger=get_logger("headrace.ratelimit"),
                             what="rate limits")

    @property
    def degraded(self) -> bool:
        return self.outage.degraded

    @property
    def last_error(self) -> str | None:
        return self.outage.last_error

    async def _call(
        self, primary: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]
    ) -> T:
        if self.outage.active():
            return await fallback()
        try:
            result = await primary()
        except OUTAGE as error:
            self.outage.down(error)
            return await fallback()
        except RateLimited:
            self.outage.up()
            raise
        self.outage.up()
        return result

    async def acquire(self, subjects: Sequence[Subject]) -> Admission:
        if not has_limits(subjects):
            return NO_LIMITS
        return await self._call(
            lambda: self.redis.acquire(subjects), lambda: self.memory.acquire(subjects)
        )

    async def charge_tokens(self, subjects: Sequence[Subject], tokens: int) -> None:
        if tokens <= 0 or not has_limits(subjects):
            return
        await self._call(
            lambda: self.redis.charge_tokens(subjects, tokens),
            lambda: self.memory.charge_tokens(subjects, tokens),
        )
