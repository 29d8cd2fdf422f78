"""Rate limits in Redis, in process memory while Redis is unreachable.

Same degraded-mode rules as `connectors.state.failover.FailoverState`: an
outage switches to the in-process limiter at once, logs once and sets the
`headrace_degraded{component="redis"}` gauge; after `retry_s` the next call
tries Redis again and stays there if it answers. Refusals (`RateLimited`) are
answers, not outages. An admission is released on the backend that granted it.

"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.state.outage import Failover, Outage
from connectors.state.redis_ratelimit import RedisRateLimiter
from engine.errors import RateLimited
from engine.governance.ratelimit import NO_LIMITS, Admission, MemoryRateLimiter, Subject, has_limits
from engine.logs import get_logger


class FailoverRateLimiter(Failover):
    name = "redis"
    answers = (RateLimited,)  # a refusal is Redis answering

    def __init__(
        self,
        redis: RedisRateLimiter,
        memory: MemoryRateLimiter | None = None,
        *,
        retry_s: float = 5.0,
    ):
        super().__init__(Outage(retry_s=retry_s, logger=get_logger("headrace.ratelimit"),
                                what="rate limits"))
        self.redis = redis
        self.memory = memory or MemoryRateLimiter(windows=redis.windows)

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
