"""Workflows through HTTP: CRUD and validation, execute (sync and streamed), run
history, and governance (permissions, usage per step)."""

from __future__ import annotations

import orjson
import pytest

from tests.gateway.conftest import create, mock, model_spec, upstream_keys  # noqa: F401
from tests.support.live import AUTH
from tests.support.mock_upstream.fixtures import mock_upstream  # noqa: F401

GREETING = {
    "id": "greet", "name": "Greeting",
    "input_schema": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string"}}},
    "steps": [{"name": "hello", "type": "template", "template": "Hello ${request:name}!"}],
    "output": {"message": "${step:hello}"},
}


def answer_flow(model: str) -> dict:
    return {
        "id": "answer",
        "input_schema": {"type": "object", "required": ["question"]},
        "steps": [
            {"name": "ask", "type": "chat_completion", "model_id": model,
             "system_message": "Be brief.", "user_message": "${request:question}"},
            {"name": "check", "type": "conditional", "conditions": [
                {"field": "${step:ask:content}", "operator": "is_empty",
                 "action": {"end_workflow": {"answer": "nothing"}}}]},
            {"name": "shape", "type": "template",
             "template": {"answer": "${step:ask:content}", "model": "${step:ask:model}"}},
        ],
        "output": "${step:shape}",
    }


async def test_crud_and_versions(client):
    created = await create(client, "/admin/workflows", GREETING)
    assert created["object"] == "workflow" and created["version"] == 1
    updated = await client.put("/admin/workflows/greet", json={"description": "v2"})
    assert (await updated.get_json())["version"] == 2
    assert (await client.get("/admin/workflows/nope")).status_code == 404


async def test_validation_lists_every_problem(client):
    response = await client.post("/admin/workflows", json={"id": "bad", "steps": [
        {"name": "a", "type": "template", "template": "${step:ghost:output}"},
        {"name": "a", "type": "template", "template": "x"},
        {"name": "b", "type": "template", "template": "x", "depends_on": ["b"]},
    ]})
    error = (await response.get_json())["error"]
    assert response.status_code == 400
    for words in ("ghost", "duplicate", "depend on itself"):
        assert words in error["message"].lower(), error["message"]
    unknown = await client.post("/admin/workflows", json={"id": "bad2", "steps": [
        {"name": "a", "type": "teleport"}]})
    assert unknown.status_code == 400
    assert (await client.get("/admin/workflows/bad")).status_code == 404


async def test_execute_single_step_and_input_validation(client):
    await create(client, "/admin/workflows", GREETING)
    ran = await client.post("/v1/workflows/greet/execute", json={"name": "Ada"})
    body = await ran.get_json()
    assert ran.status_code == 200, body
    assert body["success"] is True and body["output"] == {"message": "Hello Ada!"}
    assert body["run_id"] and body["steps"][0]["name"] == "hello"
    empty = await client.post("/v1/workflows/greet/execute", json={})
    error = (await empty.get_json())["error"]
    assert empty.status_code == 400 and "name" in error["message"]
    missing = await client.post("/v1/workflows/nope/execute", json={})
    assert missing.status_code == 404


async def test_multi_step_chat_workflow_and_run_history(app, client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url,
        pricing={"input_cost_per_token": 0.001, "output_cost_per_token": 0.001}))
    await create(client, "/admin/workflows", answer_flow("m1"))
    ran = await client.post("/v1/workflows/answer/execute", json={"question": "why is it so"})
    body = await ran.get_json()
    assert body["success"] is True, body
    assert "why is it so" in body["output"]["answer"]
    assert [s["name"] for s in body["steps"]] == ["ask", "check", "shape"]
    assert body["steps"][0]["tokens"] > 0
    sent = mock.requests()[0]["json"]["messages"]
    assert sent == [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "why is it so"}]

    runs = await (await client.get("/admin/workflow-runs?workflow_id=answer")).get_json()
    assert runs["total"] == 1 and runs["data"][0]["success"] is True
    one = await (await client.get(f"/admin/workflow-runs/{body['run_id']}")).get_json()
    assert [s["name"] for s in one["steps"]] == ["ask", "check", "shape"]
    assert (await client.get("/admin/workflow-runs/run_nope")).status_code == 404

    state = app.app.extensions["headrace"]
    await state.governance.drain()
    await state.usage.flush()
    usage = await (await client.get("/admin/usage?group_by=model")).get_json()
    assert usage["totals"]["requests"] == 1 and usage["totals"]["cost_usd"] > 0


async def test_streamed_run_events(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    await create(client, "/admin/workflows", answer_flow("m1"))
    response = await client.post("/v1/workflows/answer/execute?stream=true",
                                 json={"question": "stream it"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(await response.get_data())
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("step_started") == 3 and kinds.count("step_finished") == 3
    deltas = [e["data"] for e in events if e["event"] == "step_output_delta"]
    assert len(deltas) >= 2  # the chat step's tokens arrive as they are generated
    text = "".join(d.get("delta") or d.get("content") or "" for d in deltas)
    assert "stream it" in text
    assert events[-1]["data"]["success"] is True


async def test_permissions_on_the_workflow_and_its_models(client, anonymous, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    await create(client, "/admin/workflows", answer_flow("m1"))
    no_flow = (await (await client.post("/admin/api-keys", json={
        "name": "a", "permissions": {"workflows": "none"}})).get_json())["secret"]
    refused = await anonymous.post("/v1/workflows/answer/execute", json={"question": "x"},
                                   headers={"Authorization": f"Bearer {no_flow}"})
    assert refused.status_code == 403
    no_model = (await (await client.post("/admin/api-keys", json={
        "name": "b", "permissions": {"models": "none"}})).get_json())["secret"]
    ran = await anonymous.post("/v1/workflows/answer/execute", json={"question": "x"},
                               headers={"Authorization": f"Bearer {no_model}"})
    body = await ran.get_json()
    assert body["success"] is False and "may not use model" in body["error"]
    assert mock.requests() == []


@pytest.mark.parametrize("path", ["/v1/workflows/greet/execute", "/admin/workflows"])
async def test_no_key_is_401(anonymous, path):
    assert (await anonymous.post(path, json={})).status_code == 401


def parse_events(raw: bytes) -> list[dict]:
    return [orjson.loads(block.split("data: ", 1)[1])
            for block in raw.decode().split("\n\n") if "data: " in block]


async def test_a_dropped_client_can_reattach_and_replay(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    await create(client, "/admin/workflows", answer_flow("m1"))
    mock.configure(latency_ms=300)
    headers = {"Content-Type": "application/json", **AUTH}
    async with client.request("/v1/workflows/answer/execute?stream=true", method="POST",
                              headers=headers) as stream:
        await stream.send(orjson.dumps({"question": "slow one"}))
        await stream.send_complete()
        first = await stream.receive()
        assert b"run_started" in first, (stream.status_code, first)
        run_id = stream.headers["x-headrace-run-id"]
        await stream.disconnect()  # the client goes away mid-run
    replay = await client.get(f"/v1/workflow-runs/{run_id}/events")
    events = parse_events(await replay.get_data())
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert events[-1]["data"]["success"] is True  # the run carried on without the client
    later = await client.get(f"/v1/workflow-runs/{run_id}/events",
                             headers={"Last-Event-ID": str(events[-2]["seq"])})
    assert [e["event"] for e in parse_events(await later.get_data())] == ["run_finished"]
    missing = await client.get("/v1/workflow-runs/run_unknown/events")
    assert missing.status_code == 404


async def test_events_through_redis(settings, redis_url):
    from redis.asyncio import Redis

    from engine.workflows.events import RedisEventBuffer

    client = Redis.from_url(redis_url)
    buffer = RedisEventBuffer(client, block_ms=200)
    for seq, kind in enumerate(["run_started", "step_started", "run_finished"], start=1):
        await buffer.publish("run_x", {"event": kind, "seq": seq, "data": {}})
    assert await buffer.known("run_x") and not await buffer.known("run_y")
    assert [e["event"] async for e in buffer.follow("run_x")] == [
        "run_started", "step_started", "run_finished"]
    assert [e["seq"] async for e in buffer.follow("run_x", after=2)] == [3]
    await client.aclose()


async def test_old_runs_are_deleted_in_batches(app, client):
    from datetime import timedelta

    from engine.store.types import utcnow

    await create(client, "/admin/workflows", GREETING)
    for _ in range(5):
        await client.post("/v1/workflows/greet/execute", json={"name": "x"})
    workflows = app.app.extensions["headrace"].workflows
    assert await workflows.delete_runs_before(utcnow() - timedelta(days=1)) == 0
    deleted = await workflows.delete_runs_before(utcnow() + timedelta(seconds=1), batch=2)
    assert deleted == 5
    runs = await (await client.get("/admin/workflow-runs")).get_json()
    assert runs["total"] == 0


async def test_crag_llm_judge_through_the_gateway(client, mock):  # noqa: F811
    """The labelled set, judged by the LLM through the real gateway and the mock
    upstream (one scripted verdict per document, judged one at a time)."""
    import json
    from pathlib import Path

    pairs = json.loads((Path(__file__).parent / "data" / "crag_pairs.json").read_text())
    await create(client, "/admin/models", model_spec("judge", "openai", mock.url))
    await create(client, "/admin/workflows", {
        "id": "grade", "steps": [{
            "name": "crag", "type": "crag_scoring", "query": "${request:q}",
            "input_documents": "${request:documents}", "strategy": "llm",
            "model_id": "judge", "max_concurrency": 1, **pairs["thresholds"]}]})
    mock.script([{"reply": json.dumps({"relevance": p["judge"], "reason": "scripted"})}
                 for p in pairs["pairs"]])
    documents = [{"id": f"d{i}", "document_id": f"d{i}", "content": p["content"],
                  "score": p["score"], "metadata": {}, "chunk_index": 0}
                 for i, p in enumerate(pairs["pairs"])]
    ran = await client.post("/v1/workflows/grade/execute",
                            json={"q": pairs["query"], "documents": documents})
    body = await ran.get_json()
    assert body["success"] is True, body
    got = {d["content"]: group for group in ("correct", "ambiguous", "incorrect")
           for d in body["output"][f"{group}_documents"]}
    assert got == {p["content"]: p["expected"]["llm"] for p in pairs["pairs"]}
    judged = [r for r in mock.requests() if r["path"].endswith("/chat/completions")]
    assert len(judged) == len(pairs["pairs"])
    assert judged[0]["json"]["response_format"]["type"] == "json_schema"


async def test_only_the_runs_key_or_an_admin_may_follow_it(client, anonymous):
    await create(client, "/admin/workflows", GREETING)
    keys = [(await (await client.post("/admin/api-keys", json={"name": n})).get_json())["secret"]
            for n in ("owner", "other")]
    owner, other = ({"Authorization": f"Bearer {k}"} for k in keys)
    started = await anonymous.post("/v1/workflows/greet/execute?stream=true",
                                   json={"name": "x"}, headers=owner)
    run_id = started.headers["x-headrace-run-id"]
    await started.get_data()
    assert (await anonymous.get(f"/v1/workflow-runs/{run_id}/events",
                                headers=owner)).status_code == 200
    assert (await anonymous.get(f"/v1/workflow-runs/{run_id}/events",
                                headers=other)).status_code == 404
    assert (await client.get(f"/v1/workflow-runs/{run_id}/events")).status_code == 200
