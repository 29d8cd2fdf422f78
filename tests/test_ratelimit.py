"""Rate limits: one behaviour suite run on memory and on Redis, plus Redis outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from connectors.state import outage
from connectors.state.failover_ratelimit import FailoverRateLimiter
from connectors.state.redis import connect
from connectors.state.redis_ratelimit import RedisRateLimiter
from engine import metrics
from engine.errors import RateLimited
from engine.governance.ratelimit import (
    NO_LIMITS,
    MemoryRateLimiter,
    RateLimiter,
    Subject,
    format_reset,
)
from engine.schemas.governance import RateLimits
from tests.support.services import own_redis

DAY = 86400.0


class FakeClock:
    """Starts on a day boundary, so every window begins at t=0."""

    def __init__(self) -> None:
        self.now = 20_000 * DAY

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def key(limits: RateLimits | None = None, name: str = "k1", **kw: int) -> Subject:
    return Subject.api_key(name, limits or RateLimits(**kw))


def team(name: str = "t1", **kw: int) -> Subject:
    return Subject.team(name, RateLimits(**kw))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for memory, else the URL of a clean Redis database."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url")


@pytest.fixture
async def make(backend: str | None, clock: FakeClock) -> AsyncIterator[Callable[..., Any]]:
    clients: list[Redis] = []

    def build(*, real_time: bool = False, **kw: Any) -> RateLimiter:
        time_source = None if real_time else clock
        if backend is None:
            return MemoryRateLimiter(**kw) if real_time else MemoryRateLimiter(clock=clock, **kw)
        client = connect(backend)
        clients.append(client)
        return RedisRateLimiter(client, clock=time_source, **kw)

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def limiter(make: Callable[..., RateLimiter]) -> RateLimiter:
    return make()


async def refused(limiter: RateLimiter, subjects: list[Subject]) -> RateLimited:
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(subjects)
    return info.value


# --- the shared behaviour suite ---------------------------------------------------------


async def test_requests_per_minute_refuses_the_next_one(limiter: RateLimiter):
    subject = [key(requests_per_minute=3)]
    remaining = []
    for _ in range(3):
        admission = await limiter.acquire(subject)
        assert admission.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(admission.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    assert admission.headers["x-ratelimit-reset-requests"] == "2m0s"
    assert "x-ratelimit-limit-tokens" not in admission.headers

    error = await refused(limiter, subject)
    assert error.message == "rate limit of key k1 exceeded: 3 requests per minute"
    assert error.code == "rate_limit_exceeded"
    assert error.retry_after is not None and error.retry_after > 0
    assert error.headers == {  # type: ignore[attr-defined]
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2m0s",
    }


async def test_windows_slide_and_retry_after_is_exact(limiter: RateLimiter, clock: FakeClock):
    subject = [key(requests_per_minute=4)]
    for _ in range(4):
        await limiter.acquire(subject)
    clock.advance(30)
    error = await refused(limiter, subject)
    # Next window, the 4 weigh 4 * (1 - f): room for one more once f >= 1/4, i.e. at 75s.
    assert error.retry_after == pytest.approx(45)
    clock.advance(30)  # 60s: a new window, but the previous one still weighs fully
    await refused(limiter, subject)
    clock.advance(14.5)
    await refused(limiter, subject)
    clock.advance(0.5)  # 75s
    admission = await limiter.acquire(subject)
    assert admission.headers["x-ratelimit-remaining-requests"] == "0"  # 4*0.75 + 1 = 4
    await refused(limiter, subject)
    clock.advance(120)  # both windows gone
    for _ in range(4):
        await limiter.acquire(subject)


async def test_hour_and_day_windows(limiter: RateLimiter, clock: FakeClock):
    subject = [key(requests_per_minute=10, requests_per_hour=3, requests_per_day=5)]
    for _ in range(3):
        admission = await limiter.acquire(subject)
    # The tightest limit speaks for the headers: the hour one, with none left.
    assert admission.headers["x-ratelimit-limit-requests"] == "3"
    assert admission.headers["x-ratelimit-remaining-requests"] == "0"
    error = await refused(limiter, subject)
    assert "3 requests per hour" in error.message
    clock.advance(2 * 3600)
    for _ in range(2):
        await limiter.acquire(subject)
    error = await refused(limiter, subject)
    assert "5 requests per day" in error.message
    assert error.retry_after is not None and error.retry_after > 3600


async def test_tokens_per_minute(limiter: RateLimiter, clock: FakeClock):
    subject = [key(tokens_per_minute=100)]
    admission = await limiter.acquire(subject)
    assert admission.headers == {
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "0s",
    }
    await limiter.charge_tokens(subject, 60)
    admission = await limiter.acquire(subject)
    assert admission.headers["x-ratelimit-remaining-tokens"] == "40"
    await limiter.charge_tokens(subject, 50)
    error = await refused(limiter, subject)
    assert error.message == "rate limit of key k1 exceeded: 100 tokens per minute"
    assert error.headers["x-ratelimit-remaining-tokens"] == "0"  # type: ignore[attr-defined]
    # 110 tokens decay below 100 once 1/11 of the next window has gone.
    assert error.retry_after == pytest.approx(60 + 60 / 11, abs=0.01)
    clock.advance(error.retry_after)
    await limiter.acquire(subject)
    await limiter.charge_tokens(subject, 0)  # nothing to count
    await limiter.charge_tokens([key(name="other", requests_per_minute=5)], 10)


async def test_max_concurrent(limiter: RateLimiter):
    subject = [key(max_concurrent=2)]
    first = await limiter.acquire(subject)
    second = await limiter.acquire(subject)
    error = await refused(limiter, subject)
    assert error.message == "rate limit of key k1 exceeded: 2 concurrent requests"
    assert error.retry_after == 1.0
    await first.release()
    await first.release()  # idempotent: frees one slot only
    third = await limiter.acquire(subject)
    await refused(limiter, subject)
    async with second:
        pass
    async with await limiter.acquire(subject):
        await refused(limiter, subject)
    await third.release()
    await limiter.acquire(subject)


async def test_key_and_team_are_all_or_nothing(limiter: RateLimiter):
    k, t = key(requests_per_minute=5, max_concurrent=3), team(requests_per_minute=2)
    held = [await limiter.acquire([k, t]) for _ in range(2)]
    error = await refused(limiter, [k, t])
    assert error.message == "rate limit of team t1 exceeded: 2 requests per minute"
    assert error.headers["x-ratelimit-limit-requests"] == "2"  # type: ignore[attr-defined]
    # The refused requests took neither a key request nor a key slot.
    await refused(limiter, [k, t])
    held.append(await limiter.acquire([k]))
    await refused(limiter, [k])  # 3 slots held
    for admission in held:
        await admission.release()
    await limiter.acquire([k])
    await limiter.acquire([k])  # the 5th key request
    error = await refused(limiter, [k])
    assert "key k1" in error.message and "5 requests per minute" in error.message


async def test_concurrency_refusal_counts_no_request(limiter: RateLimiter):
    k, t = key(requests_per_minute=2), team(max_concurrent=1)
    first = await limiter.acquire([k, t])
    for _ in range(3):
        await refused(limiter, [k, t])
    await first.release()
    admission = await limiter.acquire([k, t])
    assert admission.headers["x-ratelimit-remaining-requests"] == "0"


async def test_headers_come_from_the_tightest_subject(limiter: RateLimiter):
    k, t = key(requests_per_minute=100, tokens_per_minute=50), team(requests_per_minute=10,
                                                                    tokens_per_minute=1000)
    admission = await limiter.acquire([k, t])
    assert admission.headers["x-ratelimit-limit-requests"] == "10"
    assert admission.headers["x-ratelimit-remaining-requests"] == "9"
    assert admission.headers["x-ratelimit-limit-tokens"] == "50"


async def test_parallel_acquires_never_overshoot(limiter: RateLimiter):
    subject = [key(requests_per_minute=10)]

    async def attempt() -> bool:
        try:
            await limiter.acquire(subject)
        except RateLimited:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sum(results) == 10

    slots = [key(name="k2", max_concurrent=7)]

    async def take() -> object | None:
        try:
            return await limiter.acquire(slots)
        except RateLimited:
            return None

    taken = await asyncio.gather(*(take() for _ in range(50)))
    assert sum(a is not None for a in taken) == 7


async def test_subjects_without_limits_cost_nothing(limiter: RateLimiter):
    free = [key(), team()]
    assert await limiter.acquire(free) is NO_LIMITS
    assert await limiter.acquire([]) is NO_LIMITS
    assert NO_LIMITS.headers == {}
    await NO_LIMITS.release()
    await limiter.charge_tokens(free, 1000)
    # A limitless team does not change a limited key's accounting.
    admission = await limiter.acquire([key(requests_per_minute=1), team()])
    assert admission.headers["x-ratelimit-remaining-requests"] == "0"


async def test_real_time_short_windows(make: Callable[..., RateLimiter]):
    limiter = make(real_time=True, windows={"minute": 0.4})
    subject = [key(name="rt", requests_per_minute=2)]
    await limiter.acquire(subject)
    await limiter.acquire(subject)
    error = await refused(limiter, subject)
    assert error.retry_after is not None and 0 < error.retry_after <= 0.8
    await asyncio.sleep(error.retry_after + 0.05)
    await limiter.acquire(subject)


def test_reset_format():
    assert format_reset(0) == "0s"
    assert format_reset(0.0123) == "13ms"
    assert format_reset(12) == "12s"
    assert format_reset(11.2) == "12s"
    assert format_reset(63) == "1m3s"
    assert format_reset(120) == "2m0s"
    assert format_reset(3600 + 5) == "1h0m5s"


# --- Redis specifics --------------------------------------------------------------------


async def test_redis_keys_expire(redis_url: str, clock: FakeClock):
    client = connect(redis_url)
    try:
        limiter = RedisRateLimiter(client, clock=clock, slot_ttl_s=30)
        subject = [key(requests_per_minute=5, requests_per_day=50, tokens_per_minute=9,
                       max_concurrent=1)]
        await limiter.acquire(subject)
        await limiter.charge_tokens(subject, 4)
        assert 60_000 < await client.pttl("headrace:rl:key:k1:rpm") <= 120_000
        assert 86_400_000 < await client.pttl("headrace:rl:key:k1:rpd") <= 2 * 86_400_000
        assert 60_000 < await client.pttl("headrace:rl:key:k1:tpm") <= 120_000
        assert 0 < await client.pttl("headrace:rl:key:k1:conc") <= 30_000
        assert await client.hget("headrace:rl:key:k1:tpm", "c") == b"4"
        # A crashed replica never releases; its slot lapses after slot_ttl_s.
        await refused(limiter, subject)
        clock.advance(31)
        await limiter.acquire(subject)
    finally:
        await client.aclose()


async def test_redis_uses_server_time_without_a_clock(redis_url: str):
    client = connect(redis_url)
    try:
        limiter = RedisRateLimiter(client)
        admission = await limiter.acquire([key(requests_per_minute=5)])
        assert admission.headers["x-ratelimit-remaining-requests"] == "4"
        fields = await client.hgetall("headrace:rl:key:k1:rpm")
        now = await client.time()
        assert int(fields[b"w"]) in (now[0] // 60 - 1, now[0] // 60)
    finally:
        await client.aclose()


# --- degraded mode ----------------------------------------------------------------------


def gauge() -> float | None:
    return REGISTRY.get_sample_value("headrace_degraded", {"component": "redis"})


async def test_failover_serves_from_memory_and_comes_back(caplog: pytest.LogCaptureFixture):
    # The gauge is process-wide; another test's outage may have left it set.
    outage._degraded_owners.clear()
    metrics.degraded.labels("redis").set(0)
    with own_redis() as server:
        client = connect(server.url)  # type: ignore[attr-defined]
        probe = connect(server.url)  # type: ignore[attr-defined]
        limiter = FailoverRateLimiter(RedisRateLimiter(client), retry_s=0.2)
        subject = [key(requests_per_minute=100, tokens_per_minute=10_000, max_concurrent=10)]
        try:
            on_redis = await limiter.acquire(subject)
            assert not limiter.degraded and limiter.last_error is None
            assert await probe.hget("headrace:rl:key:k1:rpm", "c") == b"1"

            caplog.set_level(logging.WARNING, logger="headrace.ratelimit")
            server(False)
            started = asyncio.get_running_loop().time()
            on_memory = await limiter.acquire(subject)
            assert asyncio.get_running_loop().time() - started < 5
            assert limiter.degraded and limiter.last_error
            assert gauge() == 1
            await limiter.charge_tokens(subject, 5)
            await on_redis.release()  # Redis is gone: the slot lapses there, no error here
            await asyncio.sleep(0.25)
            await limiter.acquire(subject)  # retries Redis, still down: memory again
            assert limiter.degraded
            down_logs = [r for r in caplog.records
                         if r.name == "headrace.ratelimit" and r.levelno == logging.ERROR]
            assert len(down_logs) == 1

            server(True)
            await probe.aclose()
            probe = connect(server.url)  # type: ignore[attr-defined]
            await asyncio.sleep(0.25)
            back = await limiter.acquire(subject)
            assert not limiter.degraded and limiter.last_error is None
            assert gauge() == 0
            assert await probe.hget("headrace:rl:key:k1:rpm", "c") == b"1"  # a fresh server
            assert len(await probe.zrange("headrace:rl:key:k1:conc", 0, -1)) == 1
            await back.release()
            assert await probe.zrange("headrace:rl:key:k1:conc", 0, -1) == []
            # The admission granted in memory is released in memory.
            assert limiter.memory._in_flight == {"key:k1:conc": 2}
            await on_memory.release()
            assert limiter.memory._in_flight == {"key:k1:conc": 1}
        finally:
            await client.aclose()
            await probe.aclose()


async def test_failover_passes_refusals_through(redis_url: str):
    client = connect(redis_url)
    try:
        limiter = FailoverRateLimiter(RedisRateLimiter(client), retry_s=0.2)
        subject = [key(requests_per_minute=1)]
        await limiter.acquire(subject)
        await refused(limiter, subject)
        assert not limiter.degraded
        assert await limiter.acquire([key()]) is NO_LIMITS
    finally:
        await client.aclose()
