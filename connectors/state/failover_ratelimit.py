"""Rate limits in Redis, in process memory while Redis is unreachable.

Same degraded-mode rules as `connectors.state.failover.FailoverState`: an
outage switches to the in-process limiter at once, logs once and sets the
`headrace_degraded{component="redis"}` gauge; after `retry_s` the next call
tries Redis again and stays there if it answers. Refusals (`RateLimited`) are
answers, not outages. An admission is released on the backend that granted it.

"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from connectors.state.outage import OUTAGE_ERRORS as OUTAGE
from connectors.state.outage import Outage
from connectors.state.redis_ratelimit import RedisRateLimiter
from engine.errors import RateLimited
from engine.governance.ratelimit import NO_LIMITS, Admission, MemoryRateLimiter, Subject, has_limits
from engine.logs import get_logger

T = TypeVar("T")

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
