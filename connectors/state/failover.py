"""Redis first, memory while Redis is unreachable (degraded mode).

A Redis failure switches to in-process state at once, logs once, and sets the
`headrace_degraded` gauge; after `retry_s` the next call tries Redis again and,
if it answers, Headrace is back on shared state. Limits and breakers keep
working per replica meanwhile instead of failing requests.
"""

from __future__ import annotations

from connectors.state.memory import MemoryState
from connectors.state.outage import Failover, Outage
from connectors.state.redis_state import RedisState
from engine.logs import get_logger

log = get_logger("headrace.state")


class FailoverState(Failover):
    name = "redis"

    def __init__(self, redis: RedisState, *, retry_s: float = 5.0):
        super().__init__(Outage(retry_s=retry_s, what="shared state"))
        self.redis = redis
        self.memory = MemoryState()

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
