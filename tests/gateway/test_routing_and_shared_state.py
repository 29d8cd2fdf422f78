"""Routing strategies, and circuit breakers / round-robin shared through Redis."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from connectors.state.memory import MemoryState
from connectors.state.redis_state import RedisState
from engine.gateway.breaker import CircuitBreakers, CircuitState
from engine.gateway.routing import Router
from engine.schemas.models import CircuitBreakerPolicy, ModelSpec


def deployments(**weights: float):
    spec = ModelSpec(id="m", provider="openai", model="x", deployments=[
        {"id": name, "weight": weight} for name, weight in weights.items()])
    return spec.endpoints()


async def test_weighted_random_follows_the_weights():
    router = Router(MemoryState())
    targets = deployments(a=1, b=3)
    firsts = Counter([(await router.order("m", "weighted", targets))[0].key
                      for _ in range(4000)])
    share = firsts["m/b"] / 4000
    assert 0.70 < share < 0.80  # 3 / (1 + 3)


async def test_round_robin_takes_turns():
    router = Router(MemoryState())
    targets = deployments(a=1, b=1, c=1)
    firsts = [(await router.order("m", "round_robin", targets))[0].key for _ in range(6)]
    assert Counter(firsts) == {"m/a": 2, "m/b": 2, "m/c": 2}
    assert firsts[0] != firsts[1] != firsts[2]


async def test_least_in_flight_prefers_the_idle_deployment():
    router = Router(MemoryState())
    targets = deployments(a=1, b=1)
    router.runtime(targets[0]).in_flight = 5
    for _ in range(20):
        assert (await router.order("m", "least_in_flight", targets))[0].key == "m/b"


async def test_latency_aware_prefers_the_fast_one_and_measures_new_ones():
    router = Router(MemoryState())
    targets = deployments(a=1, b=1, c=1)
    for _ in range(5):
        router.runtime(targets[0]).observe(0.200)
        router.runtime(targets[1]).observe(0.020)
    order = [d.key for d in await router.order("m", "latency", targets)]
    assert order == ["m/c", "m/b", "m/a"]  # unmeasured first, then by EWMA


async def test_disabled_deployments_are_skipped():
    spec = ModelSpec(id="m", provider="openai", model="x", deployments=[
        {"id": "a"}, {"id": "b", "enabled": False}])
    order = await Router(MemoryState()).order("m", "weighted", spec.endpoints())
    assert [d.key for d in order] == ["m/a"]


async def test_round_robin_is_shared_through_redis(redis_url):
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    replicas = [Router(RedisState(c)) for c in clients]
    targets = deployments(a=1, b=1)
    firsts = [(await replicas[i % 2].order("m", "round_robin", targets))[0].key
              for i in range(4)]
    assert Counter(firsts) == {"m/a": 2, "m/b": 2}  # the replicas take turns together
    for client in clients:
        await client.aclose()


async def test_circuit_state_is_shared_through_redis(redis_url):
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    one, two = (CircuitBreakers(RedisState(c)) for c in clients)
    policy = CircuitBreakerPolicy(failure_threshold=2, window_s=60, cooldown_s=60)
    for breakers in (one, two):  # one failure seen by each replica
        permit = await breakers.allow("dep")
        assert permit is not None
        await breakers.failure(permit, policy)
    assert await one.state_of("dep") == CircuitState.open
    assert await two.allow("dep") is None  # the other replica refuses too
    for client in clients:
        await client.aclose()
