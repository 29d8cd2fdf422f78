"""Distributed mode in one process: the queue, a worker loop, retries, cancellation
and recovery, against real PostgreSQL (procrastinate's tables come from the
migrations)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp import web

from engine.errors import ConfigurationError, Conflict, InvalidRequest, ServiceUnavailable
from engine.operations import OperationStore, WebhookSender
from engine.operations.distributed import QUEUE, DistributedOperations, is_transient, libpq_url
from engine.store.tables import OperationRow
from engine.store.types import utcnow


@contextlib.asynccontextmanager
async def distributed(store: OperationStore, handlers, *, work: bool = True, **options):
    """Operations through the queue, with a worker loop running in this process."""
    ops = DistributedOperations(store, str(store.db.engine.url.render_as_string(False)),
                                handlers, retry_wait_s=0.05, heartbeat_s=0.5,
                                stalled_after_s=2.0, shutdown_grace_s=1.0, **options)
    await ops.start()
    worker = (asyncio.create_task(ops.work(concurrency=4, install_signal_handlers=False))
              if work else None)
    try:
        yield ops
    finally:
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await ops.close()


async def queue_jobs(store: OperationStore, operation_id: str) -> list[tuple[str, int]]:
    async with store.db.session() as session:
        rows = await session.exec(sa.text(
            "SELECT status::text, attempts FROM procrastinate_jobs WHERE lock = :id"
        ).bindparams(id=operation_id))
        return [(status, attempts) for status, attempts in rows.all()]


async def test_submitted_operations_run_on_the_worker_once(pg_store: OperationStore):
    calls: list[str] = []

    async def handler(row, progress):
        calls.append(row.id)
        await progress({"done": 1})
        return {"n": row.request["n"]}

    async with distributed(pg_store, {"workflow": handler}) as ops:
        rows = [await ops.submit("workflow", {"n": n}) for n in range(5)]
        for row in rows:
            await ops.wait(row.id, timeout_s=15)
        for n, row in enumerate(rows):
            done = await pg_store.get(row.id)
            assert (done.status, done.result, done.attempts) == ("completed", {"n": n}, 1)
            assert done.worker == ops.worker and done.worker.startswith("worker:")
        assert sorted(calls) == sorted(r.id for r in rows)  # each exactly once
        depth = await ops.depth()
        assert depth["mode"] == "distributed"
        assert depth["operations"]["completed"] >= 5
        assert depth["queue"] == {"queued": 0, "in_progress": 0}
        assert depth["workers"] == 1


async def test_the_api_side_only_enqueues(pg_store: OperationStore):
    async def handler(row, progress):
        raise AssertionError("an API process must not run operations")

    async with distributed(pg_store, {"workflow": handler}, work=False) as ops:
        row = await ops.submit("workflow", {})
        await asyncio.sleep(0.3)
        assert (await pg_store.get(row.id)).status == "pending"
        assert await queue_jobs(pg_store, row.id) == [("todo", 0)]
        depth = await ops.depth()
        assert depth["queue"]["queued"] == 1 and depth["workers"] == 0
        with pytest.raises(InvalidRequest):
            await ops.submit("chat_completion", {})  # no handler for it


async def test_a_repeated_delivery_does_not_run_again(pg_store: OperationStore):
    calls: list[str] = []

    async def handler(row, progress):
        calls.append(row.id)
        return {}

    async with distributed(pg_store, {"workflow": handler}) as ops:
        row = await ops.submit("workflow", {})
        await ops.wait(row.id, timeout_s=15)
        # The queue delivers it again (a duplicate job): completion is idempotent.
        await ops._enqueue(row.id)
        for _ in range(100):
            if not [j for j in await queue_jobs(pg_store, row.id) if j[0] in ("todo", "doing")]:
                break
            await asyncio.sleep(0.05)
        assert calls == [row.id]
        assert (await pg_store.get(row.id)).attempts == 1


async def test_transient_failures_are_retried_then_fail_with_a_reason(pg_store: OperationStore):
    attempts: dict[str, int] = {}

    async def flaky(row, progress):
        attempts[row.id] = attempts.get(row.id, 0) + 1
        if row.request["fail_times"] >= attempts[row.id]:
            raise ConnectionResetError("database went away")
        return {"attempt": attempts[row.id]}

    async with distributed(pg_store, {"workflow": flaky}, max_attempts=3) as ops:
        recovers = await ops.submit("workflow", {"fail_times": 1})
        gives_up = await ops.submit("workflow", {"fail_times": 5})
        await ops.wait(recovers.id, timeout_s=15)
        await ops.wait(gives_up.id, timeout_s=15)
    done = await pg_store.get(recovers.id)
    assert (done.status, done.result, done.attempts) == ("completed", {"attempt": 2}, 2)
    failed = await pg_store.get(gives_up.id)
    assert failed.status == "failed" and failed.attempts == 3
    assert failed.error["code"] == "internal_error" and attempts[gives_up.id] == 3


async def test_a_definite_failure_is_not_retried(pg_store: OperationStore):
    async def bad(row, progress):
        raise InvalidRequest("no such thing", param="input")

    async with distributed(pg_store, {"workflow": bad}) as ops:
        row = await ops.submit("workflow", {})
        await ops.wait(row.id, timeout_s=15)
    failed = await pg_store.get(row.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error == {"message": "no such thing", "type": "invalid_request_error",
                            "param": "input", "code": None}


def slow_handler() -> tuple[asyncio.Event, asyncio.Event, object]:
    """A handler that runs until cancelled, and events for its start and its end."""
    started, interrupted = asyncio.Event(), asyncio.Event()

    async def slow(row, progress):
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return {}

    return started, interrupted, slow


async def test_cancel_pending_and_running_reaches_the_worker(pg_store: OperationStore):
    started, interrupted, slow = slow_handler()

    async with distributed(pg_store, {"workflow": slow}, work=False) as api:
        pending = await api.submit("workflow", {})
        cancelled = await api.cancel(pending.id)
        assert cancelled.status == "cancelled"
        assert await queue_jobs(pg_store, pending.id) == [("cancelled", 0)]

    async with distributed(pg_store, {"workflow": slow}) as ops:
        running = await ops.submit("workflow", {})
        await asyncio.wait_for(started.wait(), 15)
        assert (await pg_store.get(running.id)).status == "running"
        assert (await ops.cancel(running.id)).status == "cancelled"
        await asyncio.wait_for(interrupted.wait(), 10)  # the worker's task was cancelled
        for _ in range(100):
            if (await queue_jobs(pg_store, running.id))[0][0] == "aborted":
                break
            await asyncio.sleep(0.05)
        assert await queue_jobs(pg_store, running.id) == [("aborted", 1)]
        assert (await pg_store.get(running.id)).status == "cancelled"


async def test_a_failed_enqueue_leaves_nothing_behind(pg_store: OperationStore):
    async def handler(row, progress):
        return {}

    ops = DistributedOperations(pg_store, str(pg_store.db.engine.url.render_as_string(False)),
                                {"workflow": handler}, heartbeat_s=0.5, stalled_after_s=2.0,
                                shutdown_grace_s=1.0)
    # Never opened: the queue is unreachable for this process.
    with pytest.raises(ServiceUnavailable):
        await ops.submit("workflow", {})
    assert (await pg_store.counts())["pending"] == 0


async def test_recover_requeues_stalled_jobs_and_lost_enqueues(pg_store: OperationStore):
    calls: list[str] = []

    async def handler(row, progress):
        calls.append(row.id)
        return {"ok": True}

    async with distributed(pg_store, {"workflow": handler}, work=False) as api:
        # An API process crashed between storing the operation and queueing it.
        lost = await pg_store.create("workflow", {})
        async with pg_store.db.transaction() as session:
            await session.exec(sa.update(OperationRow).where(OperationRow.id == lost.id)
                                  .values(created_at=utcnow() - timedelta(minutes=5),
                                          updated_at=utcnow() - timedelta(minutes=5)))
        # A worker ran out of retries while the operation was running.
        exhausted = await api.submit("workflow", {})
        await pg_store.claim(exhausted.id, "worker:gone:2")
        async with pg_store.db.transaction() as session:
            await session.exec(sa.text(
                "UPDATE procrastinate_jobs SET status = 'failed' WHERE lock = :id"
            ).bindparams(id=exhausted.id))
            await session.exec(sa.update(OperationRow).where(OperationRow.id == exhausted.id)
                               .values(updated_at=utcnow() - timedelta(minutes=5)))
        # A worker took a job, then died (its heartbeat stopped long ago).
        orphaned = await api.submit("workflow", {})
        async with pg_store.db.transaction() as session:
            dead = (await session.exec(sa.text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '1 hour') RETURNING id"))).scalar_one()
            await session.exec(sa.text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                "WHERE lock = :id").bindparams(w=dead, id=orphaned.id))
        await pg_store.claim(orphaned.id, "worker:dead-host:1")
        await api.recover()
        assert await queue_jobs(pg_store, lost.id) == [("todo", 0)]
        assert [s for s, _ in await queue_jobs(pg_store, orphaned.id)] == ["todo"]
        assert sorted(s for s, _ in await queue_jobs(pg_store, exhausted.id)) == ["failed",
                                                                                   "todo"]

    async with distributed(pg_store, {"workflow": handler}) as ops:
        await ops.wait(lost.id, timeout_s=15)
        await ops.wait(orphaned.id, timeout_s=15)
        await ops.wait(exhausted.id, timeout_s=15)
    for row_id in (orphaned.id, exhausted.id):
        taken_over = await pg_store.get(row_id)
        assert (taken_over.status, taken_over.attempts) == ("completed", 2)
        assert taken_over.worker == ops.worker
    assert sorted(calls) == sorted([lost.id, orphaned.id, exhausted.id])


def test_transient_errors_and_urls():
    assert is_transient(ConnectionResetError()) and is_transient(ServiceUnavailable("x"))
    assert not is_transient(InvalidRequest("x")) and not is_transient(ValueError())
    assert libpq_url("postgresql+asyncpg://u:p@h:5433/db") == "postgresql://u:p@h:5433/db"
    with pytest.raises(Exception, match="PostgreSQL"):
        libpq_url("sqlite+aiosqlite:///x.db")


async def test_the_queue_lives_in_the_operations_queue(pg_store: OperationStore):
    async def handler(row, progress):
        return {}

    async with distributed(pg_store, {"workflow": handler}, work=False) as api:
        row = await api.submit("workflow", {})
        async with pg_store.db.session() as session:
            queue = (await session.exec(sa.text(
                "SELECT queue_name FROM procrastinate_jobs WHERE lock = :id"
            ).bindparams(id=row.id))).scalar_one()
        assert queue == QUEUE


async def test_a_superseded_attempt_stops_and_cannot_finish(pg_store: OperationStore):
    started, stopped, slow = slow_handler()

    async with distributed(pg_store, {"workflow": slow}) as ops:
        row = await ops.submit("workflow", {})
        await asyncio.wait_for(started.wait(), 15)
        # Another worker took the operation over (it thought this one dead).
        newer = await pg_store.claim(row.id, "worker:elsewhere:1")
        assert newer.attempts == 2
        await asyncio.wait_for(stopped.wait(), 5)  # noticed within a heartbeat
        with pytest.raises(Conflict):  # the old attempt can no longer finish it
            await pg_store.transition(row.id, "completed", result={}, attempt=1)
        assert not await pg_store.set_progress(row.id, {"x": 1}, attempt=1)
        current = await pg_store.get(row.id)
        assert (current.status, current.worker) == ("running", "worker:elsewhere:1")


async def test_cancel_succeeds_when_the_queue_is_unreachable(pg_store: OperationStore):
    async def handler(row, progress):
        return {}

    ops = DistributedOperations(pg_store, str(pg_store.db.engine.url.render_as_string(False)),
                                {"workflow": handler}, heartbeat_s=0.5, stalled_after_s=2.0,
                                shutdown_grace_s=1.0)
    row = await pg_store.create("workflow", {})  # never opened: the queue is unreachable
    assert (await ops.cancel(row.id)).status == "cancelled"
    assert (await pg_store.get(row.id)).status == "cancelled"


async def test_a_failed_heartbeat_does_not_stop_the_heartbeat(pg_store: OperationStore):
    async def handler(row, progress):
        return {}

    async with distributed(pg_store, {"workflow": handler}, work=False) as ops:
        manager = ops.queue.job_manager
        original = manager.update_heartbeat
        failures = []

        async def flaky(worker_id):
            if not failures:
                failures.append(worker_id)
                raise ConnectionResetError("database failover")
            await original(worker_id)

        manager.update_heartbeat = flaky  # type: ignore[method-assign]
        worker = asyncio.create_task(ops.work(install_signal_handlers=False))
        try:
            await asyncio.sleep(2.5)
            assert failures, "the heartbeat never ran"
            async with pg_store.db.session() as session:
                age = (await session.exec(sa.text(
                    "SELECT extract(epoch FROM now() - last_heartbeat) "
                    "FROM procrastinate_workers"))).scalar_one()
            assert float(age) < 1.5  # still beating after the failure
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


def test_the_stall_timeout_must_cover_heartbeat_and_grace(pg_store: OperationStore):
    with pytest.raises(ConfigurationError, match="STALLED_AFTER"):
        DistributedOperations(pg_store, "postgresql+asyncpg://h/db", {}, heartbeat_s=10,
                              stalled_after_s=15, shutdown_grace_s=10)


async def test_webhooks_are_delivered_inside_the_job(pg_store: OperationStore):
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]

    async def handler(row, progress):
        return {"answer": 42}

    sender = WebhookSender(pg_store, "s3cret", allow_private=True, backoff_s=0.01)
    try:
        async with distributed(pg_store, {"workflow": handler},
                               webhook_sender=sender) as ops:
            row = await ops.submit("workflow", {}, webhook_url=url)
            await ops.wait(row.id, timeout_s=15)
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.05)
        assert received and received[0]["operation_id"] == row.id
        assert received[0]["result"] == {"answer": 42}
        assert [d.status_code for d in await pg_store.deliveries(row.id)] == [204]
    finally:
        await runner.cleanup()
