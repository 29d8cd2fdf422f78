"""The embedded runner: execution, cancellation, concurrency, failures, recovery."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import Conflict, InvalidRequest, NotFound, UpstreamError
from engine.operations import OperationRunner, OperationStore


async def _eventually(check, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_submit_runs_to_completion_with_progress(store: OperationStore):
    async def handler(row, progress):
        await progress({"step": 1})
        await progress({"step": 2})  # rate-limited: written with the final state
        return {"echo": row.request}

    runner = OperationRunner(store, {"workflow": handler}, progress_interval_s=10)
    try:
        row = await runner.submit("workflow", {"x": 1}, key_id="k", team_id="t")
        assert row.status == "pending"
        await runner.wait(row.id)
        done = await store.get(row.id)
        assert done.status == "completed" and done.result == {"echo": {"x": 1}}
        assert done.progress == {"step": 2}
        assert done.started_at and done.finished_at
    finally:
        await runner.close()


async def test_submit_refuses_unknown_type_and_bad_webhook(store: OperationStore):
    runner = OperationRunner(store, {"workflow": lambda row, p: asyncio.sleep(0)})
    with pytest.raises(InvalidRequest):
        await runner.submit("ingestion", {})
    with pytest.raises(InvalidRequest):
        await runner.submit("workflow", {}, webhook_url="ftp://example.com/")
    with pytest.raises(InvalidRequest):
        await runner.submit("workflow", {}, webhook_url="http://127.0.0.1/hook")
    await runner.close()


async def test_cancel_pending_never_starts(store: OperationStore):
    gate = asyncio.Event()
    started: list[str] = []

    async def handler(row, progress):
        started.append(row.id)
        await gate.wait()
        return {}

    runner = OperationRunner(store, {"workflow": handler}, max_concurrency=1)
    try:
        first = await runner.submit("workflow", {})
        await _eventually(lambda: _started(started, first.id))
        second = await runner.submit("workflow", {})
        cancelled = await runner.cancel(second.id)
        assert cancelled.status == "cancelled"
        gate.set()
        await runner.wait(first.id)
        await runner.wait(second.id)
        assert started == [first.id]
        assert (await store.get(second.id)).status == "cancelled"
        assert (await store.get(first.id)).status == "completed"
        with pytest.raises(Conflict):
            await runner.cancel(first.id)
        with pytest.raises(Conflict):
            await runner.cancel(second.id)
    finally:
        await runner.close()


async def _started(started, op_id):
    return op_id in started


async def test_cancel_running_interrupts_the_handler(store: OperationStore):
    observed = asyncio.Event()
    running = asyncio.Event()

    async def handler(row, progress):
        running.set()
        try:
            await asyncio.sleep(60)  # stands for an in-flight upstream request
        except asyncio.CancelledError:
            observed.set()
            raise
        return {}

    runner = OperationRunner(store, {"chat_completion": handler})
    try:
        row = await runner.submit("chat_completion", {})
        await asyncio.wait_for(running.wait(), 5)
        cancelled = await runner.cancel(row.id)
        assert cancelled.status == "cancelled" and cancelled.finished_at
        assert observed.is_set()
        assert (await store.get(row.id)).status == "cancelled"
    finally:
        await runner.close()


async def test_cancel_respects_scope(store: OperationStore):
    gate = asyncio.Event()

    async def handler(row, progress):
        await gate.wait()
        return {}

    runner = OperationRunner(store, {"workflow": handler})
    try:
        row = await runner.submit("workflow", {}, team_id="t1")
        with pytest.raises(NotFound):
            await runner.cancel(row.id, scope_team_id="t2")
        with pytest.raises(InvalidRequest):
            await runner.cancel("op-bad")
        gate.set()
        await runner.wait(row.id)
    finally:
        await runner.close()


async def test_concurrency_is_bounded(store: OperationStore):
    active = 0
    peak = 0

    async def handler(row, progress):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return {}

    runner = OperationRunner(store, {"workflow": handler}, max_concurrency=2)
    try:
        rows = [await runner.submit("workflow", {}) for _ in range(6)]
        for row in rows:
            await runner.wait(row.id)
        assert peak == 2
        assert all(r.status == "completed" for r in await store.get_many([r.id for r in rows]))
    finally:
        await runner.close()


async def test_failures_have_the_openai_error_shape(store: OperationStore):
    async def known(row, progress):
        raise UpstreamError("the provider said no", code="upstream_error")

    async def boom(row, progress):
        raise RuntimeError("secret internals")

    described = []

    def describe(error):
        described.append(error)
        return {"message": error.message, "type": "api_error", "param": error.param,
                "code": error.code}

    runner = OperationRunner(store, {"workflow": known, "ingestion": boom},
                             describe_error=describe)
    try:
        a = await runner.submit("workflow", {})
        b = await runner.submit("ingestion", {})
        await runner.wait(a.id)
        await runner.wait(b.id)
        failed = await store.get(a.id)
        assert failed.status == "failed"
        assert failed.error == {"message": "the provider said no", "type": "api_error",
                                "param": None, "code": "upstream_error"}
        assert len(described) == 1
        crashed = await store.get(b.id)
        assert crashed.status == "failed"
        assert set(crashed.error) == {"message", "type", "param", "code"}
        assert crashed.error["type"] == "api_error"
        assert "secret" not in crashed.error["message"]
    finally:
        await runner.close()


async def test_default_describe_error_maps_types(store: OperationStore):
    async def bad(row, progress):
        raise InvalidRequest("bad input", param="messages")

    runner = OperationRunner(store, {"workflow": bad})
    try:
        row = await runner.submit("workflow", {})
        await runner.wait(row.id)
        assert (await store.get(row.id)).error == {
            "message": "bad input", "type": "invalid_request_error", "param": "messages",
            "code": None}
    finally:
        await runner.close()


async def test_restart_recovery(store: OperationStore):
    # A crashed process left one operation running and one pending.
    stuck = await store.create("workflow", {})
    await store.transition(stuck.id, "running")
    waiting = await store.create("workflow", {"n": 1})
    resumable = await store.create("ingestion", {"n": 2})
    await store.transition(resumable.id, "running")

    async def handler(row, progress):
        return {"n": row.request.get("n")}

    runner = OperationRunner(store, {"workflow": handler, "ingestion": handler},
                             resumable_types={"ingestion"})
    try:
        await runner.start()
        failed = await store.get(stuck.id)
        assert failed.status == "failed"
        assert "interrupted by a restart" in failed.error["message"]
        assert failed.error["code"] == "interrupted"
        await runner.wait(waiting.id)
        await runner.wait(resumable.id)
        assert (await store.get(waiting.id)).result == {"n": 1}
        assert (await store.get(waiting.id)).status == "completed"
        assert (await store.get(resumable.id)).status == "completed"
        assert await store.interrupted() == []
    finally:
        await runner.close()


async def test_close_then_restart_finishes_the_work(store: OperationStore):
    running = asyncio.Event()

    async def slow(row, progress):
        running.set()
        await asyncio.sleep(60)
        return {}

    first = OperationRunner(store, {"workflow": slow}, max_concurrency=1)
    a = await first.submit("workflow", {})
    b = await first.submit("workflow", {})
    await asyncio.wait_for(running.wait(), 5)
    await first.close()  # the "crash": a stays running, b stays pending
    assert (await store.get(a.id)).status == "running"
    assert (await store.get(b.id)).status == "pending"

    async def quick(row, progress):
        return {"ok": True}

    second = OperationRunner(store, {"workflow": quick})
    try:
        await second.start()
        await second.wait(b.id)
        assert (await store.get(a.id)).status == "failed"
        assert (await store.get(b.id)).status == "completed"
    finally:
        await second.close()


async def test_a_result_that_cannot_be_stored_fails_the_operation(store: OperationStore):
    from datetime import UTC, datetime

    async def handler(row, progress):
        return {"when": datetime.now(UTC)}  # not JSON

    runner = OperationRunner(store, {"workflow": handler})
    try:
        row = await runner.submit("workflow", {}, key_id="k", team_id="t")
        await runner.wait(row.id)
        done = await store.get(row.id)
        assert done.status == "failed"
        assert "could not be stored" in done.error["message"]
    finally:
        await runner.close()
