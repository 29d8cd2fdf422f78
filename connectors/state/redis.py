"""Redis connections shared by the parts that use Redis (limits, breakers, events)."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    # Short timeouts: a Redis that stops answering must make callers fall back
    # to in-process state quickly, not hang requests.
    return Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=15,
        decode_responses=False,
    )


async def ping(client: Redis) -> None:
    await client.ping()
