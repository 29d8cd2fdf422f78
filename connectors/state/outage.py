"""Degraded-mode bookkeeping shared by every Redis-backed part.

When Redis stops answering, each part (shared state, rate limits, budgets)
serves from process memory at once; `Outage` records that: it logs once per
outage, sets the `headrace_degraded` gauge (kept at 1 while any part on the
same component is still degraded), says when to try Redis again, and logs the
return.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine import metrics
from engine.logs import get_logger

T = TypeVar("T")

# What counts as "Redis is unreachable" (anything else is a real error).
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)

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


class Failover:
    """Redis first, memory during an outage: the routing every Redis-backed part
    shares. `answers` are exceptions that are Redis's answer (a refusal), not an
    outage."""

    answers: tuple[type[BaseException], ...] = ()

    def __init__(self, outage: Outage):
        self.outage = outage

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
        except OUTAGE_ERRORS as error:
            self.outage.down(error)
            return await fallback()
        except self.answers:
            self.outage.up()
            raise
        self.outage.up()
        return result
