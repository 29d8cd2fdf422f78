"""The embedded runner: executes stored operations in-process, a bounded number
at a time.

State lives in the database (see `store.py`), so a restart loses nothing: on
`start()`, operations left `running` are failed with a reason (or resumed when
their type is declared resumable) and pending ones are scheduled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from engine import errors as e
from engine.logs import get_logger
from engine.operations.store import OPERATION_TYPES, OperationStore
from engine.operations.webhooks import WebhookSender, validate_webhook_url
from engine.store.tables import OperationRow

ProgressFn = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[OperationRow, ProgressFn], Awaitable[dict[str, Any]]]
DescribeError = Callable[[e.HeadraceError], dict[str, Any]]

INTERRUPTED = "interrupted by a restart"
log = get_logger(__name__)

_TYPES: list[tuple[type[e.HeadraceError], str]] = [
    (e.InvalidRequest, "invalid_request_error"),
    (e.AuthenticationFailed, "authentication_error"),
    (e.PermissionDenied, "permission_error"),
    (e.NotFound, "not_found_error"),
    (e.Conflict, "invalid_request_error"),
    (e.RateLimited, "rate_limit_error"),
    (e.BudgetExceeded, "insufficient_quota"),
]


def default_describe_error(error: e.HeadraceError) -> dict[str, Any]:
    """An OpenAI-shaped error body; the API layer may inject its own mapping."""
    kind = next((name for cls, name in _TYPES if isinstance(error, cls)), "api_error")
    return {"message": error.message, "type": kind, "param": error.param, "code": error.code}


def _internal_error(message: str = "the operation failed with an internal error"
                    ) -> dict[str, Any]:
    return {"message": message, "type": "api_error", "param": None, "code": "internal_error"}


class OperationRunner:
    def __init__(self, store: OperationStore, handlers: dict[str, Handler], *,
                 max_concurrency: int = 4, webhook_sender: WebhookSender | None = None,
                 describe_error: DescribeError = default_describe_error,
                 resumable_types: Collection[str] = (), progress_interval_s: float = 0.5):
        unknown = set(handlers) - OPERATION_TYPES
        if unknown:
            raise e.ConfigurationError(f"handlers for unknown operation types: {unknown}")
        self.store = store
        self.handlers = dict(handlers)
        self.webhook_sender = webhook_sender
        self.describe_error = describe_error
        self.resumable_types = frozenset(resumable_types)
        self.progress_interval_s = progress_interval_s
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._webhooks: set[asyncio.Task[Any]] = set()
        self._closing = False  # no new submissions
        self._stopped = False  # no new webhook deliveries either

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Recover after a crash, then schedule what is still pending."""
        for row in await self.store.interrupted():
            if row.id in self._tasks:
                continue
            if row.type in self.resumable_types and row.type in self.handlers:
                log.info("resuming interrupted operation", operation_id=row.id)
                self._schedule(row.id, resume=True)
                continue
            error = {"message": f"the operation was {INTERRUPTED}", "type": "api_error",
                     "param": None, "code": "interrupted"}
            with contextlib.suppress(e.Conflict):
                failed = await self.store.transition(row.id, "failed", error=error)
                log.warning("operation interrupted by a restart", operation_id=row.id)
                self._send_webhook(failed)
        for row in await self.store.with_status("pending"):
            if row.id not in self._tasks:
                self._schedule(row.id)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop: wait up to `grace_s` for running work and its webhooks, then cancel
        the rest. Cancelled work stays `running`/`pending` in the store and is
        recovered by the next `start()`."""
        self._closing = True
        if grace_s > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace_s
            # Operations first; webhooks they trigger on finishing are waited for too.
            for pending in (self._tasks, self._webhooks):
                tasks = list(pending.values() if isinstance(pending, dict) else pending)
                remaining = deadline - loop.time()
                if tasks and remaining > 0:
                    await asyncio.wait(tasks, timeout=remaining)
        self._stopped = True
        for task in [*self._tasks.values(), *self._webhooks]:
            task.cancel()
        await asyncio.gather(*self._tasks.values(), *self._webhooks, return_exceptions=True)

    # --- API --------------------------------------------------------------------------

    async def submit(self, type: str, request: dict[str, Any], *, key_id: str | None = None,
                     team_id: str | None = None, webhook_url: str | None = None,
                     ) -> OperationRow:
        if type not in self.handlers:
            raise e.InvalidRequest(f"operations of type {type!r} are not available",
                                   param="type")
        if self._closing:
            raise e.ServiceUnavailable("the operation runner is shutting down")
        if webhook_url is not None:
            allow = self.webhook_sender.allow_private if self.webhook_sender else False
            validate_webhook_url(webhook_url, allow_private=allow)
        row = await self.store.create(type, request, key_id=key_id, team_id=team_id,
                                      webhook_url=webhook_url)
        self._schedule(row.id)
        return row

    async def cancel(self, operation_id: str, *, scope_team_id: str | None = None,
                     scope_key_id: str | None = None) -> OperationRow:
        """Cancel a pending or running operation; a finished one is a `Conflict`."""
        await self.store.get(operation_id, scope_team_id=scope_team_id,
                             scope_key_id=scope_key_id)
        row = await self.store.transition(operation_id, "cancelled")
        task = self._tasks.get(operation_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._send_webhook(row)
        return row

    async def wait(self, operation_id: str) -> None:
        """Wait until this runner is done with the operation (for tests and tools)."""
        task = self._tasks.get(operation_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    @property
    def active(self) -> int:
        return len(self._tasks)

    # --- execution --------------------------------------------------------------------

    def _schedule(self, operation_id: str, *, resume: bool = False) -> None:
        task = asyncio.create_task(self._run(operation_id, resume=resume),
                                   name=f"operation {operation_id}")
        self._tasks[operation_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(operation_id, None))

    async def _run(self, operation_id: str, *, resume: bool) -> None:
        async with self._semaphore:
            try:
                if resume:
                    row = await self.store.get(operation_id)
                    if row.status != "running":
                        return
                else:
                    row = await self.store.transition(operation_id, "running")
            except (e.Conflict, e.NotFound):
                return  # cancelled (or deleted) while it waited
            await self._execute(row)

    async def _execute(self, row: OperationRow) -> None:
        latest: dict[str, Any] | None = None
        flushed = True
        last_write = 0.0

        async def progress(value: dict[str, Any]) -> None:
            nonlocal latest, flushed, last_write
            latest, flushed = value, False
            now = time.monotonic()
            if now - last_write >= self.progress_interval_s:
                last_write, flushed = now, True
                await self.store.set_progress(row.id, value)

        pending_progress = lambda: None if flushed else latest  # noqa: E731
        try:
            result = await self.handlers[row.type](row, progress)
        except asyncio.CancelledError:
            # `cancel()` already stored `cancelled`; on close() the row stays running
            # and the next start() recovers it.
            raise
        except e.HeadraceError as error:
            await self._finish(row.id, "failed", error=self.describe_error(error),
                               progress=pending_progress())
        except Exception:
            log.exception("operation failed", operation_id=row.id, type=row.type)
            await self._finish(row.id, "failed", error=_internal_error(),
                               progress=pending_progress())
        else:
            if not isinstance(result, dict):
                log.error("operation handler returned a non-dict result",
                          operation_id=row.id, type=row.type)
                await self._finish(row.id, "failed", error=_internal_error())
                return
            await self._finish(row.id, "completed", result=result, progress=pending_progress())

    async def _finish(self, operation_id: str, status: str, **values: Any) -> None:
        try:
            row = await self.store.transition(operation_id, status, **values)
        except e.Conflict:
            return  # cancelled meanwhile: the cancellation won
        except Exception:
            # A result that cannot be stored (not JSON, too large) must not leave
            # the operation `running` for ever.
            log.exception("could not store the operation's outcome", operation_id=operation_id)
            if status != "completed":
                raise
            row = await self.store.transition(
                operation_id, "failed",
                error=_internal_error("the operation's result could not be stored"))
        self._send_webhook(row)

    def _send_webhook(self, row: OperationRow) -> None:
        if self.webhook_sender is None or not row.webhook_url or self._stopped:
            return
        task = asyncio.create_task(self._deliver(row), name=f"webhook {row.id}")
        self._webhooks.add(task)
        task.add_done_callback(self._webhooks.discard)

    async def _deliver(self, row: OperationRow) -> None:
        assert self.webhook_sender is not None
        try:
            await self.webhook_sender.deliver(row)
        except Exception:
            log.exception("webhook delivery crashed", operation_id=row.id)
