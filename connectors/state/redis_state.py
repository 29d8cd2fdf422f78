"""Shared state in Redis, so every replica sees the same counters and flags."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisState:
    name = "redis"

    def __init__(self, client: Redis, prefix: str = "headrace:"):
        self.client = client
        self.prefix = prefix

    async def incr(self, key: str, amount: int = 1, *, ttl_s: float | None = None) -> int:
        full = self.prefix + key
        if ttl_s is None:
            return int(await self.client.incrby(full, amount))
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(full, amount)
            pipe.pexpire(full, int(ttl_s * 1000), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def get_many(self, keys: list[str]) -> list[str | None]:
        values = await self.client.mget([self.prefix + k for k in keys])
        return [v.decode() if isinstance(v, bytes) else v for v in values]

    async def set(
        self, key: str, value: str, *, ttl_s: float | None = None, nx: bool = False
    ) -> bool:
        px = int(ttl_s * 1000) if ttl_s else None
        return bool(await self.client.set(self.prefix + key, value, px=px, nx=nx))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.client.delete(*(self.prefix + k for k in keys))
