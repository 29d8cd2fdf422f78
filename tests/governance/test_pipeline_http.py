"""Governance through HTTP: rate limits, usage accounting, budgets, audit, and
degraded mode, on the embedded default and with Redis."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from api.app import create_app
from tests.gateway.conftest import create, model_spec
from tests.governance.test_keys_and_auth import bearer, new_key

HELLO = [{"role": "user", "content": "hello"}]


async def chat(client, secret, model="m1", **extra):
    return await client.post("/v1/chat/completions", headers=bearer(secret),
                             json={"model": model, "messages": HELLO, **extra})


async def test_requests_per_minute_limit(client, anonymous, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    key = await new_key(client, rate_limits={"requests_per_minute": 2})
    first = await chat(anonymous, key["secret"])
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert (await chat(anonymous, key["secret"])).status_code == 200
    refused = await chat(anonymous, key["secret"])
    error = (await refused.get_json())["error"]
    assert refused.status_code == 429 and error["type"] == "rate_limit_error"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "2 requests per minute" in error["message"]
    assert len(mock.requests()) == 2  # the refused request never reached the upstream
    other = await new_key(client)
    assert (await chat(anonymous, other["secret"])).status_code == 200


async def test_team_limit_applies_on_top_of_the_key(client, anonymous, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    await create(client, "/admin/teams", {"id": "t1", "rate_limits": {"requests_per_minute": 3}})
    a = await new_key(client, team_id="t1")
    b = await new_key(client, team_id="t1")
    results = [(await chat(anonymous, k["secret"])).status_code
               for k in (a, b, a, b)]
    assert results == [200, 200, 200, 429]


async def test_concurrency_limit_holds_for_the_whole_stream(client, anonymous, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    key = await new_key(client, rate_limits={"max_concurrent": 1})
    mock.configure(chunk_delay_ms=150)
    headers = {**bearer(key["secret"]), "Content-Type": "application/json"}
    async with anonymous.request("/v1/chat/completions", method="POST",
                                 headers=headers) as stream:
        await stream.send(orjson.dumps({"model": "m1", "messages": HELLO, "stream": True}))
        await stream.send_complete()
        first = await stream.receive()  # the stream has started and is still open
        assert first.startswith(b"data: ")
        busy = await chat(anonymous, key["secret"])
        assert busy.status_code == 429
        assert "concurrent" in (await busy.get_json())["error"]["message"]
    assert b"[DONE]" in bytes(stream.response_data)  # the rest, collected on exit
    mock.configure(chunk_delay_ms=0)
    assert (await chat(anonymous, key["secret"])).status_code == 200


async def test_tokens_per_minute_limit(client, anonymous, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    key = await new_key(client, rate_limits={"tokens_per_minute": 5})
    assert (await chat(anonymous, key["secret"])).status_code == 200  # uses > 5 tokens
    refused = await chat(anonymous, key["secret"])
    assert refused.status_code == 429
    assert "tokens per minute" in (await refused.get_json())["error"]["message"]


async def test_usage_is_recorded_with_cost_and_queryable(app, client, anonymous, mock):
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url,
        pricing={"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}))
    key = await new_key(client)
    response = await chat(anonymous, key["secret"])
    usage = (await response.get_json())["usage"]
    stream = await anonymous.post("/v1/chat/completions", headers=bearer(key["secret"]),
                                  json={"model": "m1", "messages": HELLO, "stream": True})
    await stream.get_data()
    await app.app.extensions["headrace"].governance.drain()
    await app.app.extensions["headrace"].usage.flush()
    report = await (await client.get(f"/admin/usage?key_id={key['id']}&group_by=model")
                    ).get_json()
    totals = report["totals"]
    assert totals["requests"] == 2
    expected = usage["prompt_tokens"] * 0.001 + usage["completion_tokens"] * 0.002
    assert totals["cost_usd"] == pytest.approx(2 * expected)
    assert report["groups"][0]["key"] == "m1"


async def test_usage_writes_are_idempotent_by_request_id(app, client, anonymous, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    key = await new_key(client)
    for _ in range(2):
        await anonymous.post("/v1/chat/completions",
                             headers={**bearer(key["secret"]), "X-Request-ID": "same-id-1"},
                             json={"model": "m1", "messages": HELLO})
    await app.app.extensions["headrace"].governance.drain()
    await app.app.extensions["headrace"].usage.flush()
    report = await (await client.get(f"/admin/usage?key_id={key['id']}")).get_json()
    assert report["totals"]["requests"] == 1


async def test_budget_refuses_once_spent(app, client, anonymous, mock):
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url, defaults={"max_tokens": 20},
        pricing={"input_cost_per_token": 0.01, "output_cost_per_token": 0.01}))
    key = await new_key(client)
    await create(client, "/admin/budgets", {
        "id": "b1", "scope": "key", "scope_id": key["id"], "amount_usd": 0.5,
        "period": "daily"})
    statuses = []
    for _ in range(30):
        statuses.append((await chat(anonymous, key["secret"], max_tokens=10)).status_code)
        if statuses[-1] != 200:
            break
    assert statuses[0] == 200 and statuses[-1] == 429
    refused = await chat(anonymous, key["secret"], max_tokens=10)
    error = (await refused.get_json())["error"]
    assert error["type"] == "insufficient_quota" and error["code"] == "budget_exceeded"
    assert "b1" in error["message"]
    status = await (await client.get("/admin/budgets/b1/status")).get_json()
    assert status["state"] == "exhausted"
    # Spent stays within one request's worth of the amount (each costs < $0.25 here).
    assert status["spent_usd"] <= 0.5 + 0.25


async def test_concurrent_requests_cannot_overspend(app, client, anonymous, mock):
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url,
        pricing={"input_cost_per_token": 0.001, "output_cost_per_token": 0.001}))
    key = await new_key(client)
    await create(client, "/admin/budgets", {
        "id": "b2", "scope": "key", "scope_id": key["id"], "amount_usd": 0.2,
        "period": "lifetime"})
    mock.configure(latency_ms=50)
    results = await asyncio.gather(*[chat(anonymous, key["secret"], max_tokens=20)
                                     for _ in range(40)])
    codes = [r.status_code for r in results]
    assert codes.count(200) >= 1 and codes.count(429) >= 1
    status = await (await client.get("/admin/budgets/b2/status")).get_json()
    worst_request = (200 + 20) * 0.001  # a generous upper bound of one request's cost
    assert status["spent_usd"] <= 0.2 + worst_request


async def test_admin_changes_are_audited_without_secrets(client):
    key = await new_key(client)
    await client.post("/admin/prompts", json={"id": "p1", "content": "hi"})
    await client.put("/admin/prompts/p1", json={"content": "hello"})
    await client.post(f"/admin/api-keys/{key['id']}/suspend")
    logs = await (await client.get("/admin/audit-logs")).get_json()
    actions = [(r["action"], r["resource_type"], r["resource_id"]) for r in logs["data"]]
    assert actions[:4] == [("suspend", "api_key", key["id"]), ("update", "prompt", "p1"),
                           ("create", "prompt", "p1"), ("create", "api_key", key["id"])]
    assert all(r["actor_key_id"] == "key-bootstrap-admin" for r in logs["data"])
    assert key["secret"] not in str(logs)
    update = logs["data"][1]
    assert update["before"]["content"] == "hi" and update["after"]["content"] == "hello"
    assert update["request_id"]
    filtered = await (await client.get("/admin/audit-logs?resource_type=prompt")).get_json()
    assert filtered["total"] == 2


async def test_redis_outage_keeps_serving_in_degraded_mode(settings, mock):
    from tests.support.live import AUTH
    from tests.support.services import own_redis

    with own_redis() as server:
        settings.redis_url = server.url  # type: ignore[attr-defined]
        app = create_app(settings)
        async with app.test_app() as running:
            client = running.test_client()
            await client.post("/admin/models", headers=AUTH,
                              json=model_spec("m1", "openai", mock.url))
            response = await client.post("/admin/api-keys", headers=AUTH, json={
                "name": "r", "rate_limits": {"requests_per_minute": 100}})
            secret = (await response.get_json())["secret"]
            ok = await chat(client, secret)
            assert ok.headers["x-ratelimit-remaining-requests"] == "99"
            ready = await (await client.get("/ready")).get_json()
            assert ready["checks"]["redis"]["status"] == "ok"

            server(False)  # Redis goes away: requests are still served, limits in process
            degraded = await chat(client, secret)
            assert degraded.status_code == 200
            assert degraded.headers["x-ratelimit-remaining-requests"] == "99"
            ready = await client.get("/ready")
            body = await ready.get_json()
            assert ready.status_code == 200 and body["status"] == "ready"
            assert body["checks"]["redis"]["status"] == "degraded"
            assert "rate limits in process" in body["checks"]["redis"]["detail"]
            server(True)
