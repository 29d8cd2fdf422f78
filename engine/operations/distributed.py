"""Distributed mode: operations run on `headrace worker` processes, fed by
procrastinate's task queue in the same PostgreSQL database.

The operations table stays the source of truth for status, result and progress;
a queue job only carries the operation id. That split is what makes delivery
at-least-once and completion idempotent:

- a job claims its operation (`pending` -> `running`, or takes over one left
  `running` by a crashed or failed attempt), which counts an attempt; only the
  latest attempt may store progress or an outcome (the guarded transitions
  compare `attempts`), and a running attempt that finds its operation cancelled
  or taken over stops; so a finished or cancelled operation is never redone and
  an operation completes once;
- the job's procrastinate `lock` is the operation id, so the queue itself never
  hands one operation to two workers at once;
- a transient failure (database or network trouble, a service unavailable) is
  retried with backoff up to `max_attempts`; a worker that dies mid-job stops
  sending heartbeats and any live worker puts its jobs back in the queue;
- cancelling aborts the job: procrastinate notifies the worker running it, which
  cancels the asyncio task, and with it the upstream HTTP request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import procrastinate
import procrastinate.worker
import sqlalchemy as sa
from procrastinate.job_context import AbortReason, JobContext
from sqlalchemy.engine import make_url

from engine import errors as e
from engine.logs import get_logger
from engine.operations.executor import (
    DescribeError,
    Handler,
    OperationExecutor,
    default_describe_error,
    internal_error,
)
from engine.operations.runner import worker_name
from engine.operations.store import FINISHED, OperationStore
from engine.operations.webhooks import WebhookSender
from engine.store.tables import OperationRow
from engine.store.types import utcnow

TASK = "headrace.run_operation"
QUEUE = "headrace-operations"
log = get_logger(__name__)


class Interrupted(Exception):
    """The worker shut down mid-operation: another attempt picks it up."""


def is_transient(error: BaseException) -> bool:
    """Worth another attempt later: infrastructure trouble, not a bad request or
    an upstream's definite answer."""
    if isinstance(error, e.ServiceUnavailable | Interrupted):
        return True
    if isinstance(error, e.HeadraceError):
        return False
    return isinstance(error, OSError | sa.exc.OperationalError | sa.exc.InterfaceError
                      | sa.exc.DisconnectionError)


def libpq_url(database_url: str) -> str:
    """`postgresql+asyncpg://...` (SQLAlchemy) as a plain libpq connection string."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise e.ConfigurationError(
            "distributed operations need PostgreSQL: set HEADRACE_DATABASE_URL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class DistributedOperations:
    """Submits, cancels and reports on queued operations (every process), and runs
    them (`work()`, in `headrace worker` processes only)."""

    def __init__(self, store: OperationStore, database_url: str,
                 handlers: dict[str, Handler], *,
                 webhook_sender: WebhookSender | None = None,
                 describe_error: DescribeError = default_describe_error,
                 max_attempts: int = 3, retry_wait_s: float = 2.0,
                 heartbeat_s: float = 10.0, stalled_after_s: float = 30.0,
                 shutdown_grace_s: float = 10.0, progress_interval_s: float = 0.5,
                 pool_size: int = 10):
        if stalled_after_s <= heartbeat_s + shutdown_grace_s:
            # A worker stops its heartbeat when it starts shutting down; its running
            # operations must not look abandoned before their grace period ends.
            raise e.ConfigurationError(
                "HEADRACE_OPERATIONS_STALLED_AFTER_S must exceed the heartbeat interval "
                f"plus the shutdown grace ({heartbeat_s} + {shutdown_grace_s} s)")
        self.store = store
        # A worker finishes an operation's webhook inside its job, so a worker that
        # stops does not drop deliveries in flight.
        self.executor = OperationExecutor(store, handlers, webhook_sender=webhook_sender,
                                          describe_error=describe_error,
                                          progress_interval_s=progress_interval_s,
                                          await_webhooks=True)
        self.handlers = self.executor.handlers
        self.webhook_sender = webhook_sender
        self.max_attempts = max_attempts
        self.heartbeat_s = heartbeat_s
        self.stalled_after_s = stalled_after_s
        self.shutdown_grace_s = shutdown_grace_s
        self.queue = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=libpq_url(database_url), min_size=1, max_size=pool_size))
        self.queue.task(
            name=TASK, queue=QUEUE, pass_context=True,
            # The operation's own `attempts` decides when to stop (the last attempt
            # fails the operation instead of raising); the queue's budget is larger so
            # it never drops a job whose operation is still `running`.
            retry=procrastinate.RetryStrategy(
                max_attempts=2 * max_attempts, wait=retry_wait_s, linear_wait=retry_wait_s,
                retry_exceptions={Exception}),
        )(self._run_job)
        self.worker = worker_name("worker")
        self._queue_worker: _Worker | None = None
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        await self.queue.open_async()

    async def close(self, grace_s: float = 0.0) -> None:
        self._closing = True
        await self.executor.close(grace_s)
        await self.queue.close_async()

    # --- API (any process) ----------------------------------------------------------

    async def submit(self, type: str, request: dict[str, Any], *, key_id: str | None = None,
                     team_id: str | None = None, webhook_url: str | None = None,
                     ) -> OperationRow:
        row = await self.executor.create(type, request, key_id=key_id, team_id=team_id,
                                         webhook_url=webhook_url, closing=self._closing)
        try:
            await self._enqueue(row.id)
        except Exception as error:
            log.error("could not enqueue an operation", operation_id=row.id,
                      error=error.__class__.__name__)
            try:
                await self.store.discard(row.id)  # the caller never learns its id
            except Exception:  # a worker's recovery enqueues it later instead
                log.exception("could not discard an unqueued operation", operation_id=row.id)
            raise e.ServiceUnavailable("the operation queue is unavailable") from None
        return row

    async def cancel(self, operation_id: str, *, scope_team_id: str | None = None,
                     scope_key_id: str | None = None) -> OperationRow:
        """Cancel a pending or running operation; a finished one is a `Conflict`. The
        worker running it (if any) is told to abort."""
        await self.store.get(operation_id, scope_team_id=scope_team_id,
                             scope_key_id=scope_key_id)
        row = await self.store.transition(operation_id, "cancelled")
        try:
            for job in await self.queue.job_manager.list_jobs_async(lock=operation_id):
                if job.status in ("todo", "doing") and job.id is not None:
                    await self.queue.job_manager.cancel_job_by_id_async(job.id, abort=True)
        except Exception as error:
            # Stored as cancelled all the same: a worker running it notices within a
            # heartbeat, and a queued job finds nothing to do.
            log.warning("could not abort the operation's job", operation_id=operation_id,
                        error=error.__class__.__name__)
        self.executor.send_webhook(row)
        return row

    async def wait(self, operation_id: str, timeout_s: float = 60.0) -> None:
        """Wait until the operation has finished (for tests and tools)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (await self.store.get(operation_id)).status not in FINISHED:
            if loop.time() > deadline:
                raise TimeoutError(f"operation {operation_id} did not finish")
            await asyncio.sleep(0.05)

    @property
    def active(self) -> int:
        return 0  # nothing runs in an API process

    async def depth(self) -> dict[str, Any]:
        """Operations by status, queue jobs by status and the live workers."""
        async with self.store.db.session() as session:
            jobs = dict((await session.exec(sa.text(
                "SELECT status::text, count(*) FROM procrastinate_jobs "
                "WHERE queue_name = :queue AND status IN ('todo', 'doing') GROUP BY status"
            ).bindparams(queue=QUEUE))).all())
            workers = (await session.exec(sa.text(
                "SELECT count(*) FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - make_interval(secs => :stalled)"
            ).bindparams(stalled=self.stalled_after_s))).scalar_one()
        return {"mode": "distributed", "operations": await self.store.counts(),
                "queue": {"queued": int(jobs.get("todo", 0)),
                          "in_progress": int(jobs.get("doing", 0))},
                "workers": int(workers)}

    async def _enqueue(self, operation_id: str) -> None:
        await self.queue.configure_task(
            TASK, queue=QUEUE, lock=operation_id, queueing_lock=operation_id,
        ).defer_async(operation_id=operation_id)

    # --- worker ---------------------------------------------------------------------

    async def work(self, *, concurrency: int = 4, queues: Collection[str] = (QUEUE,),
                   install_signal_handlers: bool = True) -> None:
        """Run operations until SIGTERM/SIGINT (then finish or hand back what runs)."""
        self.queue.perform_import_paths()
        self._queue_worker = _Worker(
            app=self.queue, queues=list(queues), concurrency=concurrency, name=self.worker,
            update_heartbeat_interval=self.heartbeat_s,
            stalled_worker_timeout=self.stalled_after_s,
            shutdown_graceful_timeout=self.shutdown_grace_s,
            fetch_job_polling_interval=max(self.heartbeat_s, 1.0),
            abort_job_polling_interval=max(self.heartbeat_s / 2, 0.5),
            delete_jobs="successful", install_signal_handlers=install_signal_handlers)
        recovery = asyncio.create_task(self._recover_forever(), name="queue-recovery")
        try:
            await self._queue_worker.run()
        finally:
            recovery.cancel()
            await asyncio.gather(recovery, return_exceptions=True)

    async def _run_job(self, context: JobContext, operation_id: str) -> None:
        try:
            row = await self.store.claim(operation_id, self.worker)
        except (e.Conflict, e.NotFound):
            return  # finished, cancelled or expired: a repeated delivery does nothing
        if row.attempts > self.max_attempts:
            await self.executor.finish(row, "failed", error=internal_error(
                f"the operation was interrupted {row.attempts - 1} times", code="interrupted"))
            return
        last_attempt = row.attempts >= self.max_attempts
        execution = asyncio.create_task(self.executor.execute(
            row, retryable=lambda error: not last_attempt and is_transient(error)))
        try:
            while not execution.done():
                await asyncio.wait({execution}, timeout=self.heartbeat_s)
                if not execution.done() and not await self._still_ours(row):
                    log.info("operation cancelled or taken over; this attempt stops",
                             operation_id=row.id, attempt=row.attempts)
                    execution.cancel()
                    await asyncio.gather(execution, return_exceptions=True)
                    return
            execution.result()  # a transient failure: the queue retries the job
        except asyncio.CancelledError:
            execution.cancel()
            await asyncio.gather(execution, return_exceptions=True)
            if context.abort_reason() != AbortReason.SHUTDOWN:
                raise  # cancelled by a user: the operation is stored as cancelled
            if not last_attempt:
                # Hand it back: the queue retries it on a worker that stays up.
                raise Interrupted("the worker shut down") from None
            await self.executor.finish(row, "failed", error=internal_error(
                "the operation was interrupted by worker shutdowns", code="interrupted"))
            raise
        except Exception as error:
            log.warning("operation attempt failed; it will be retried", operation_id=row.id,
                        attempt=row.attempts, error=type(error).__name__)
            raise

    async def _still_ours(self, row: OperationRow) -> bool:
        try:
            current = await self.store.get(row.id)
        except e.NotFound:
            return False
        except Exception:
            return True  # cannot tell (database trouble): keep going
        return current.status == "running" and current.attempts == row.attempts

    async def _recover_forever(self) -> None:
        while True:
            await asyncio.sleep(max(self.heartbeat_s, 0.5))
            try:
                await self.recover()
            except Exception as error:  # the next pass catches up
                log.warning("queue recovery failed", error=type(error).__name__)

    async def recover(self, *, unqueued_after_s: float = 60.0) -> None:
        """Put lost work back in the queue: the jobs of workers whose heartbeat
        stopped, and operations still pending or running with no job left to run
        them (an API that crashed before enqueueing, a job whose retries ran out)."""
        manager = self.queue.job_manager
        own_id = self._queue_worker.worker_id if self._queue_worker else None
        for job in await manager.get_stalled_jobs(
                queue=QUEUE, seconds_since_heartbeat=self.stalled_after_s):
            if own_id is not None and job.worker_id == own_id:
                continue  # this worker is alive (it is running this code)
            with contextlib.suppress(Exception):  # another worker may have requeued it
                await manager.retry_job(job)
                log.warning("requeued the job of a stalled worker", job_id=job.id,
                            operation_id=job.lock)
        jobs = sa.table("procrastinate_jobs", sa.column("lock"), sa.column("status"))
        quiet_since = utcnow() - timedelta(seconds=max(unqueued_after_s, self.stalled_after_s))
        query = (sa.select(OperationRow.id)
                 .where(OperationRow.status.in_(("pending", "running")),  # type: ignore[attr-defined]
                        OperationRow.updated_at < quiet_since,
                        ~sa.exists().where(jobs.c.lock == OperationRow.id,
                                           sa.cast(jobs.c.status, sa.String)
                                           .in_(("todo", "doing", "aborting"))))
                 .limit(100))
        async with self.store.db.session() as session:
            lost = (await session.exec(query)).scalars().all()
        for operation_id in lost:
            with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
                await self._enqueue(operation_id)
                log.warning("requeued an operation no job was running", operation_id=operation_id)


class _Worker(procrastinate.worker.Worker):
    """procrastinate's worker, whose heartbeat survives a failed update (it
    would otherwise stop for good, and the worker's jobs would be taken over while
    it still runs them)."""

    async def _update_heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.update_heartbeat_interval)
            try:
                assert self.worker_id is not None
                await self.app.job_manager.update_heartbeat(self.worker_id)
            except Exception as error:
                log.warning("worker heartbeat failed; retrying", error=type(error).__name__)
