"""Redis first, memory while Redis is unreachable (degraded mode).

A Redis failure switches to in-process state at once, logs once, and sets the
`headrace_degraded` gauge; after `retry_s` the next call tries Redis again and,
if it answers, Headrace is back on shared state. Limits and breakers keep
working per replica meanwhile instead of failing requests.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from connectors.state.memory import MemoryState
from connectors.state.redis_state import RedisState
from engine import metrics
from engine.logs import get_logger

log = get_logger("headrace.state")
T = TypeVar("T")
_OUTAGE = (RedisConnectionError, RedisTimeoutError, OSError)


class FailoverState:
    name = "redis"

    def __init__(self, redis: RedisState, *, retry_s: float = 5.0):
        self.redis = redis
        self.memory = MemoryState()
        self.retry_s = retry_s
        self._down_until = 0.0
        self.degraded = False
        self.last_error: str | None = None

    async def _call(
        self, primary: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]
    ) -> T:
        if self.degraded and time.monotonic() < self._down_until:
            return await fallback()
        try:
            result = await primary()
        except _OUTAGE as error:
            self._mark_down(error)
            return await fallback()
        if self.degraded:
            self.degraded = False
            self.last_error = None
            metrics.degraded.labels("redis").set(0)
            log.warning("redis reachable again; shared state restored")
        return result

    def _mark_down(self, error: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_s
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        if not self.degraded:
            self.degraded = True
            metrics.degraded.labels("redis").set(1)
            log.error(
                "redis unreachable; serving with in-process state (degraded mode)",
                error=self.last_error,
            )

    async def incr(self, key: str, amount: int = 1, *, ttl_s: float | None = None) -> int:
        return await self._call(
            lambda: self.redis.incr(key, amount, ttl_s=ttl_s),
            lambda: self.memory.incr(key, amount, ttl_s=ttl_s),
        )

    async def get_many(self, keys: list[str]) -> list[str | None]:
        return await self._call(
            lambda: self.redis.get_many(keys), lambda: self.memory.get_many(keys)
        )

    async def set(
        self, key: str, value: str, *, ttl_s: float | None = None, nx: bool = False
    ) -> bool:
        return await self._call(
            lambda: self.redis.set(key, value, ttl_s=ttl_s, nx=nx),
            lambda: self.memory.set(key, value, ttl_s=ttl_s, nx=nx),
        )

    async def delete(self, *keys: str) -> None:
        await self._call(lambda: self.redis.delete(*keys), lambda: self.memory.delete(*keys))
