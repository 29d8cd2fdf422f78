"""Webhooks: signing, verification, retry with backoff, SSRF refusal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from engine.operations import (
    OperationRunner,
    OperationStore,
    WebhookSender,
    sign,
    verify_signature,
)
from engine.operations.webhooks import SIGNATURE_HEADER

SECRET = "whsec_test"


def test_sign_and_verify():
    body = b'{"status":"completed"}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(SECRET, header, body, now=1_700_000_010)
    assert verify_signature(SECRET, header, body.decode(), now=1_700_000_010)
    assert not verify_signature("other", header, body, now=1_700_000_010)
    assert not verify_signature(SECRET, header, body + b" ", now=1_700_000_010)
    assert not verify_signature(SECRET, header, body, tolerance_s=300, now=1_700_001_000)
    assert not verify_signature(SECRET, "garbage", body)
    assert not verify_signature(SECRET, "t=abc,v1=00", body)
    assert verify_signature(SECRET, sign(SECRET, body), body)


class Receiver:
    """A local webhook endpoint that fails the first `failures` calls with a 503."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[tuple[str, bytes]] = []
        self.received = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append((request.headers.get(SIGNATURE_HEADER, ""), body))
        if len(self.calls) <= self.failures:
            return web.Response(status=503)
        self.received.set()
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield target, f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


async def test_retry_then_success_records_every_attempt(store: OperationStore, receiver):
    target, url = receiver
    sender = WebhookSender(store, SECRET, max_attempts=5, backoff_s=0.01, backoff_max_s=0.05,
                           allow_private=True)

    async def handler(row, progress):
        return {"answer": 42}

    runner = OperationRunner(store, {"chat_completion": handler}, webhook_sender=sender)
    try:
        row = await runner.submit("chat_completion", {}, webhook_url=url)
        await asyncio.wait_for(target.received.wait(), 10)
    finally:
        await runner.close(grace_s=5)
    assert len(target.calls) == 3
    header, body = target.calls[-1]
    assert verify_signature(SECRET, header, body, now=time.time())
    payload = orjson.loads(body)
    assert payload["operation_id"] == row.id and payload["status"] == "completed"
    assert payload["result"] == {"answer": 42}
    for _ in range(100):
        deliveries = await store.deliveries(row.id)
        if len(deliveries) == 3:
            break
        await asyncio.sleep(0.02)
    assert [(d.attempt, d.status_code) for d in deliveries] == [(1, 503), (2, 503), (3, 204)]


async def test_gives_up_after_max_attempts(store: OperationStore, receiver):
    target, url = receiver
    target.failures = 10
    sender = WebhookSender(store, SECRET, max_attempts=2, backoff_s=0.01, allow_private=True)
    row = await store.create("workflow", {}, webhook_url=url)
    row = await store.transition(row.id, "cancelled")
    assert await sender.deliver(row) is False
    assert [d.status_code for d in await store.deliveries(row.id)] == [503, 503]


async def test_network_errors_are_retried_and_recorded(store: OperationStore):
    sender = WebhookSender(store, SECRET, max_attempts=2, backoff_s=0.01, allow_private=True,
                           timeout_s=2)
    row = await store.create("workflow", {}, webhook_url="http://127.0.0.1:9/hook")
    row = await store.transition(row.id, "cancelled")
    assert await sender.deliver(row) is False
    deliveries = await store.deliveries(row.id)
    assert [d.attempt for d in deliveries] == [1, 2]
    assert all(d.status_code is None and d.error for d in deliveries)


async def test_private_targets_are_refused(store: OperationStore, receiver):
    target, url = receiver
    sender = WebhookSender(store, SECRET, max_attempts=3, backoff_s=0.01)
    literal = await store.create("workflow", {}, webhook_url=url)
    literal = await store.transition(literal.id, "cancelled")
    assert await sender.deliver(literal) is False
    by_name = await store.create("workflow", {},
                                 webhook_url=url.replace("127.0.0.1", "localhost"))
    by_name = await store.transition(by_name.id, "cancelled")
    assert await sender.deliver(by_name) is False
    assert target.calls == []
    for row in (literal, by_name):
        deliveries = await store.deliveries(row.id)
        assert len(deliveries) == 1 and deliveries[0].status_code is None
        assert "internal" in deliveries[0].error
