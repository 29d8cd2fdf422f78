"""Failure injection: retries, backoff, Retry-After, fallback, latency limits,
circuit breakers, bulkheads, and streams that never show a failed attempt."""

from __future__ import annotations

import asyncio
import time

import pytest
from tenacity import RetryCallState

from engine.gateway.retry import Backoff
from engine.schemas.models import RetryPolicy
from tests.gateway.conftest import create, model_spec
from tests.gateway.test_chat_api import sse_chunks

FAST = {"base_delay_ms": 1, "max_delay_ms": 5}
HELLO = [{"role": "user", "content": "hello"}]


async def chain(client, mock, *steps: dict, retry: dict | None = None, **models_extra):
    for step in steps:
        await create(client, "/admin/models",
                     model_spec(step["model"], "openai", mock.url, **models_extra))
    await create(client, "/admin/chains",
                 {"id": "c1", "steps": list(steps), "retry": retry or FAST})


def upstream_models(mock) -> list[str]:
    return [r["json"]["model"] for r in mock.requests()]


async def test_retries_retryable_failures_then_succeeds(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 2})
    mock.script([{"status": 500}, {"status": 503}])
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 200, await response.get_json()
    assert response.headers["x-headrace-attempts"] == "3"
    assert len(mock.requests()) == 3


async def test_gives_up_after_max_retries_with_a_clear_error(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 1})
    mock.script([{"status": 500}] * 2)
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    error = (await response.get_json())["error"]
    assert response.status_code == 502
    assert "after 2 attempts" in error["message"]
    assert error["type"] == "api_error"
    assert len(mock.requests()) == 2


async def test_does_not_retry_a_rejected_request(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 3}, {"model": "m2"})
    mock.script([{"status": 400, "body": {"error": {"message": "bad thing"}}}])
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 400
    assert "bad thing" in (await response.get_json())["error"]["message"]
    assert len(mock.requests()) == 1  # no retry, no fallback: another model would fail too


async def test_honours_retry_after(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 1})
    mock.script([{"status": 429, "retry_after": "1"}])
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert 1.0 <= elapsed < 3.0
    first, second = mock.requests()
    assert second["time"] - first["time"] >= 0.95


async def test_retry_after_beyond_the_policy_falls_back_at_once(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 3}, {"model": "m2"},
                retry={**FAST, "max_retry_after_ms": 500})
    mock.script([{"status": 429, "retry_after": "30"}], match={"model": "upstream-m1"})
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 200
    assert time.perf_counter() - started < 2
    assert upstream_models(mock) == ["upstream-m1", "upstream-m2"]
    assert response.headers["x-headrace-fallbacks"] == "1"


def test_backoff_is_full_jitter_and_capped():
    backoff = Backoff(RetryPolicy(base_delay_ms=100, max_delay_ms=250))
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.25), (10, 0.25)):
        state = RetryCallState(None, None, (), {})
        state.attempt_number = attempt
        delays = [backoff(state) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # full jitter spreads up to the ceiling


async def test_backoff_waits_stay_under_the_cap(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 4},
                retry={"base_delay_ms": 5000, "max_delay_ms": 40})
    mock.script([{"status": 500}] * 4)
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 200
    assert time.perf_counter() - started < 4 * 0.04 + 1.0  # uncapped, one wait alone is 5 s


async def test_falls_back_to_the_next_step(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 1}, {"model": "m2"})
    mock.script([{"status": 503}] * 2, match={"model": "upstream-m1"})
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 200
    assert response.headers["x-headrace-deployment"] == "m2"
    assert response.headers["x-headrace-fallbacks"] == "1"
    assert upstream_models(mock) == ["upstream-m1", "upstream-m1", "upstream-m2"]


async def test_on_failure_fail_stops_the_chain(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 0, "on_failure": "fail"},
                {"model": "m2"})
    mock.script([{"status": 503}], match={"model": "upstream-m1"})
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 503
    assert upstream_models(mock) == ["upstream-m1"]


async def test_latency_limit_falls_back(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 0, "max_latency_ms": 150},
                {"model": "m2"})
    mock.script([{"delay_ms": 3000}], match={"model": "upstream-m1"})
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 200
    assert response.headers["x-headrace-deployment"] == "m2"
    assert time.perf_counter() - started < 1.5


async def test_stream_latency_limit_counts_time_to_first_token(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 0, "max_latency_ms": 150},
                {"model": "m2"})
    mock.script([{"ttft_ms": 3000}], match={"model": "upstream-m1"})
    response = await client.post("/v1/chat/completions", json={
        "model": "c1", "messages": HELLO, "stream": True})
    _, done = sse_chunks(await response.get_data())
    assert done and response.headers["x-headrace-deployment"] == "m2"


async def test_circuit_opens_half_opens_and_closes(client, mock):
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url, max_retries=0,
        circuit_breaker={"failure_threshold": 2, "window_s": 60, "cooldown_s": 0.4}))
    mock.script([{"status": 500}] * 2)
    for _ in range(2):
        response = await client.post("/v1/chat/completions",
                                     json={"model": "m1", "messages": HELLO})
        assert response.status_code == 502
    health = await (await client.get("/admin/models/m1/health")).get_json()
    assert health["deployments"][0]["circuit"] == "open"

    refused = await client.post("/v1/chat/completions", json={"model": "m1", "messages": HELLO})
    assert refused.status_code == 503
    assert (await refused.get_json())["error"]["code"] == "circuit_open"
    assert len(mock.requests()) == 2  # refused without calling the upstream

    await asyncio.sleep(0.5)
    health = await (await client.get("/admin/models/m1/health")).get_json()
    assert health["deployments"][0]["circuit"] == "half_open"
    mock.script([{"status": 500}])  # the probe fails: open again
    probe = await client.post("/v1/chat/completions", json={"model": "m1", "messages": HELLO})
    assert probe.status_code == 502
    health = await (await client.get("/admin/models/m1/health")).get_json()
    assert health["deployments"][0]["circuit"] == "open"

    await asyncio.sleep(0.5)
    probe = await client.post("/v1/chat/completions", json={"model": "m1", "messages": HELLO})
    assert probe.status_code == 200  # the probe succeeds: closed
    health = await (await client.get("/admin/models/m1/health")).get_json()
    assert health["deployments"][0]["circuit"] == "closed"


async def test_open_circuit_routes_to_another_deployment(client, mock):
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url, max_retries=1, routing="round_robin",
        circuit_breaker={"failure_threshold": 1, "cooldown_s": 60},
        deployments=[{"id": "a", "model": "up-a"}, {"id": "b", "model": "up-b"}]))
    mock.script([{"status": 500}], match={"model": "up-a"})
    mock.script([{"status": 500}], match={"model": "up-b"})
    # The first failure opens one deployment's circuit; the retry goes to the other.
    response = await client.post("/v1/chat/completions", json={"model": "m1", "messages": HELLO})
    assert response.status_code == 502
    for _ in range(3):
        response = await client.post("/v1/chat/completions",
                                     json={"model": "m1", "messages": HELLO})
        assert response.status_code == 503  # both open now
    assert sorted(upstream_models(mock)) == ["up-a", "up-b"]


async def test_bulkhead_fails_fast_when_queue_is_full(client, mock):
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url, max_retries=0, max_concurrency=1, max_queue=0))
    mock.configure(latency_ms=400)
    slow = asyncio.create_task(client.post("/v1/chat/completions",
                                           json={"model": "m1", "messages": HELLO}))
    await asyncio.sleep(0.1)
    rejected = await client.post("/v1/chat/completions", json={"model": "m1", "messages": HELLO})
    assert rejected.status_code == 503
    assert (await rejected.get_json())["error"]["code"] == "deployment_saturated"
    assert rejected.headers["Retry-After"] == "1"
    assert (await slow).status_code == 200


async def test_failed_stream_attempt_is_never_shown(client, mock):
    """A stream that breaks before its first token is retried out of sight."""
    await chain(client, mock, {"model": "m1", "max_retries": 0}, {"model": "m2"})
    mock.script([{"break_after": 0, "reply": "BROKEN ATTEMPT"}], match={"model": "upstream-m1"})
    mock.script([{"reply": "clean answer from m2"}], match={"model": "upstream-m2"})
    response = await client.post("/v1/chat/completions", json={
        "model": "c1", "messages": HELLO, "stream": True})
    chunks, done = sse_chunks(await response.get_data())
    assert done
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "clean answer from m2"
    assert len({c["id"] for c in chunks}) == 1  # one stream, not two spliced
    assert upstream_models(mock) == ["upstream-m1", "upstream-m2"]


async def test_stream_broken_after_first_token_ends_with_an_error_event(client, mock):
    await chain(client, mock, {"model": "m1", "max_retries": 2})
    mock.script([{"break_after": 3, "reply": "one two three four five six"}])
    response = await client.post("/v1/chat/completions", json={
        "model": "c1", "messages": HELLO, "stream": True})
    assert response.status_code == 200
    chunks, done = sse_chunks(await response.get_data())
    assert not done  # no [DONE]: the client must not take a cut answer as complete
    assert "error" in chunks[-1]
    assert len(mock.requests()) == 1  # after the first token, no retry (it would repeat text)


@pytest.mark.parametrize("status", [408, 409, 429, 502])
async def test_retryable_statuses(client, mock, status):
    await chain(client, mock, {"model": "m1", "max_retries": 1})
    mock.script([{"status": status}])
    response = await client.post("/v1/chat/completions", json={"model": "c1", "messages": HELLO})
    assert response.status_code == 200
    assert len(mock.requests()) == 2
