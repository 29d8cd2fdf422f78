"""Async operations over HTTP: 202 + Location, polling, batch and list, cancel,
and webhooks; chat and workflows run the same way as their synchronous calls."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import SecretStr

from engine.operations import verify_signature
from tests.gateway.conftest import create, mock, model_spec, upstream_keys  # noqa: F401
from tests.support.mock_upstream.fixtures import mock_upstream  # noqa: F401

HELLO = {"model": "m1", "messages": [{"role": "user", "content": "hello later"}]}


async def wait_done(client, operation_id: str, timeout_s: float = 4.0) -> dict:
    for _ in range(int(timeout_s / 0.02)):
        body = await (await client.get(f"/v1/operations/{operation_id}")).get_json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"operation {operation_id} never finished: {body}")


async def test_async_chat_completes_with_the_sync_body(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    accepted = await client.post("/v1/chat/completions?async=true", json=HELLO)
    body = await accepted.get_json()
    assert accepted.status_code == 202, body
    assert body["status"] == "pending" and body["operation_id"].startswith("op-")
    assert accepted.headers["Location"] == f"/v1/operations/{body['operation_id']}"
    done = await wait_done(client, body["operation_id"])
    assert done["status"] == "completed" and done["type"] == "chat_completion"
    assert done["result"]["object"] == "chat.completion"
    assert "hello later" in done["result"]["choices"][0]["message"]["content"]


async def test_refusals_happen_before_enqueueing(client, mock):  # noqa: F811
    missing = await client.post("/v1/chat/completions?async=true", json=HELLO)
    assert missing.status_code == 404  # unknown model: not an operation that fails later
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    both = await client.post("/v1/chat/completions?async=true", json={**HELLO, "stream": True})
    assert both.status_code == 400


async def test_failed_operation_carries_the_error(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url, max_retries=0))
    accepted = await client.post("/v1/chat/completions?async=true", json={
        "model": "m1", "messages": [{"role": "user", "content": "x [[mock:status=400]]"}]})
    done = await wait_done(client, (await accepted.get_json())["operation_id"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "invalid_request_error"


async def test_cancel_running_and_finished(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    mock.configure(latency_ms=2000)
    accepted = await client.post("/v1/chat/completions?async=true", json=HELLO)
    operation_id = (await accepted.get_json())["operation_id"]
    for _ in range(100):  # until the upstream has the request
        if mock.requests():
            break
        await asyncio.sleep(0.02)
    cancelled = await client.delete(f"/v1/operations/{operation_id}")
    assert (await cancelled.get_json())["status"] == "cancelled"
    await asyncio.sleep(0.1)
    assert mock.requests()[0]["aborted"] is True  # the upstream saw the request dropped
    again = await client.delete(f"/v1/operations/{operation_id}")
    assert again.status_code == 409


async def test_get_batch_list_and_errors(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    ids = [(await (await client.post("/v1/chat/completions?async=true", json=HELLO)
                   ).get_json())["operation_id"] for _ in range(3)]
    for operation_id in ids:
        await wait_done(client, operation_id)
    batch = await (await client.get(f"/v1/operations?ids={ids[2]},{ids[0]}")).get_json()
    assert [o["operation_id"] for o in batch["data"]] == [ids[2], ids[0]]
    listing = await (await client.get("/v1/operations?status=completed&limit=2")).get_json()
    assert len(listing["data"]) == 2 and listing["has_more"] is True
    assert (await client.get("/v1/operations/not-an-id")).status_code == 400
    assert (await client.get("/v1/operations/op-00000000-0000-0000-0000-000000000000")
            ).status_code == 404


async def test_other_teams_cannot_see_an_operation(client, anonymous, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    accepted = await client.post("/v1/chat/completions?async=true", json=HELLO)
    operation_id = (await accepted.get_json())["operation_id"]
    other = (await (await client.post("/admin/api-keys", json={"name": "o"})).get_json())
    seen = await anonymous.get(f"/v1/operations/{operation_id}",
                               headers={"Authorization": f"Bearer {other['secret']}"})
    assert seen.status_code == 404


async def test_async_workflow_and_signed_webhook(settings, mock):  # noqa: F811
    from api.app import create_app
    from tests.support.live import AUTH

    received: list[tuple[str, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers["X-Headrace-Signature"], await request.read()))
        return web.Response(status=204)

    hooks = web.Application()
    hooks.router.add_post("/hook", hook)
    runner = web.AppRunner(hooks)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    settings.webhook_secret = SecretStr("whsec_test_secret_value")
    settings.knowledge_allow_private_urls = True  # the test receiver is on 127.0.0.1
    app = create_app(settings)
    async with app.test_app() as running:
        client = running.test_client()
        await client.post("/admin/workflows", headers=AUTH, json={
            "id": "greet", "steps": [{"name": "t", "type": "template",
                                      "template": "Hi ${request:name}"}]})
        accepted = await client.post(
            f"/v1/workflows/greet/execute?async=true&webhook_url=http://127.0.0.1:{port}/hook",
            json={"name": "Ada"}, headers=AUTH)
        assert accepted.status_code == 202, await accepted.get_json()
        operation_id = (await accepted.get_json())["operation_id"]
        for _ in range(200):
            body = await (await client.get(f"/v1/operations/{operation_id}",
                                           headers=AUTH)).get_json()
            if body["status"] == "completed" and received:
                break
            await asyncio.sleep(0.02)
        assert body["result"]["output"] == "Hi Ada"
    await runner.cleanup()
    signature, payload = received[0]
    assert verify_signature("whsec_test_secret_value", signature, payload)
    assert b'"status":"completed"' in payload.replace(b" ", b"")


async def test_async_ingestion_reports_progress(client):
    await client.post("/admin/knowledge-bases", json={"id": "kb-op"})
    accepted = await client.post("/admin/knowledge-bases/kb-op/documents?async=true",
                                 json={"id": "doc1", "text": "Operations ingest later."})
    body = await accepted.get_json()
    assert accepted.status_code == 202, body
    # The first ingestion in a process loads the parser and the embedding model.
    done = await wait_done(client, body["operation_id"], timeout_s=60)
    assert done["status"] == "completed" and done["type"] == "ingestion", done
    assert done["result"]["data"][0]["id"] == "doc1"
    assert done["progress"]["documents_done"] == done["progress"]["documents_total"] == 1
    upload = await client.post("/admin/knowledge-bases/kb-op/documents?async=true",
                               form={"x": "y"})
    assert upload.status_code == 415
    missing = await client.post("/admin/knowledge-bases/nope/documents?async=true",
                                json={"text": "x"})
    assert missing.status_code == 404
