"""Runs one stored operation: its handler, progress writes, the final guarded
transition and the webhook. The embedded runner and the distributed worker
both execute operations through this; they differ only in how work is scheduled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from engine import errors as e
from engine.logs import get_logger
from engine.operations.store import OPERATION_TYPES, OperationStore
from engine.operations.webhooks import WebhookSender, validate_webhook_url
from engine.store.tables import OperationRow

ProgressFn = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[OperationRow, ProgressFn], Awaitable[dict[str, Any]]]
DescribeError = Callable[[e.HeadraceError], dict[str, Any]]
Retryable = Callable[[BaseException], bool]

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


def internal_error(message: str = "the operation failed with an internal error",
                   code: str = "internal_error") -> dict[str, Any]:
    return {"message": message, "type": "api_error", "param": None, "code": code}


def _never(_error: BaseException) -> bool:
    return False


class OperationExecutor:
    def __init__(self, store: OperationStore, handlers: dict[str, Handler], *,
                 webhook_sender: WebhookSender | None = None,
                 describe_error: DescribeError = default_describe_error,
                 progress_interval_s: float = 0.5, await_webhooks: bool = False):
        unknown = set(handlers) - OPERATION_TYPES
        if unknown:
            raise e.ConfigurationError(f"handlers for unknown operation types: {unknown}")
        self.store = store
        self.handlers = dict(handlers)
        self.webhook_sender = webhook_sender
        self.describe_error = describe_error
        self.progress_interval_s = progress_interval_s
        self.await_webhooks = await_webhooks
        self._webhooks: set[asyncio.Task[Any]] = set()
        self._stopped = False  # no new webhook deliveries

    async def create(self, type: str, request: dict[str, Any], *, key_id: str | None,
                     team_id: str | None, webhook_url: str | None, closing: bool,
                     ) -> OperationRow:
        """Check a submission (a type this process can run, a webhook URL it may
        call) and store it as `pending`."""
        if type not in self.handlers:
            raise e.InvalidRequest(f"operations of type {type!r} are not available",
                                   param="type")
        if closing:
            raise e.ServiceUnavailable("Headrace is shutting down")
        if webhook_url is not None:
            allow = self.webhook_sender.allow_private if self.webhook_sender else False
            validate_webhook_url(webhook_url, allow_private=allow)
        return await self.store.create(type, request, key_id=key_id, team_id=team_id,
                                       webhook_url=webhook_url)

    async def execute(self, row: OperationRow, *, retryable: Retryable = _never) -> None:
        """Run a `running` operation to its end. An exception `retryable` accepts is
        raised to the caller (which retries later) instead of failing the operation;
        cancellation propagates and leaves the row as it is."""
        latest: dict[str, Any] | None = None
        flushed = True
        last_write = 0.0

        async def progress(value: dict[str, Any]) -> None:
            nonlocal latest, flushed, last_write
            latest, flushed = value, False
            now = time.monotonic()
            if now - last_write >= self.progress_interval_s:
                last_write, flushed = now, True
                await self.store.set_progress(row.id, value, attempt=row.attempts)

        pending_progress = lambda: None if flushed else latest  # noqa: E731
        try:
            result = await self.handlers[row.type](row, progress)
        except asyncio.CancelledError:
            # A cancel already stored `cancelled`; on shutdown the row stays running
            # and is recovered (or retried) later.
            raise
        except e.HeadraceError as error:
            if retryable(error):
                raise
            await self.finish(row, "failed", error=self.describe_error(error),
                              progress=pending_progress())
        except Exception as error:
            if retryable(error):
                raise
            log.exception("operation failed", operation_id=row.id, type=row.type)
            await self.finish(row, "failed", error=internal_error(),
                              progress=pending_progress())
        else:
            if not isinstance(result, dict):
                log.error("operation handler returned a non-dict result",
                          operation_id=row.id, type=row.type)
                await self.finish(row, "failed", error=internal_error())
                return
            await self.finish(row, "completed", result=result, progress=pending_progress())

    async def finish(self, row: OperationRow, status: str, **values: Any) -> None:
        """The final transition, then the webhook. Only the attempt that last
        claimed the operation may finish it, and only once."""
        try:
            done = await self.store.transition(row.id, status, attempt=row.attempts, **values)
        except e.Conflict:
            return  # cancelled, or taken over by a newer attempt: that one decides
        except Exception:
            # A result that cannot be stored (not JSON, too large) must not leave
            # the operation `running` for ever.
            log.exception("could not store the operation's outcome", operation_id=row.id)
            if status != "completed":
                raise
            done = await self.store.transition(
                row.id, "failed", attempt=row.attempts,
                error=internal_error("the operation's result could not be stored"))
        delivery = self.send_webhook(done)
        if delivery is not None and self.await_webhooks:
            await asyncio.shield(delivery)

    def send_webhook(self, row: OperationRow) -> asyncio.Task[None] | None:
        if self.webhook_sender is None or not row.webhook_url or self._stopped:
            return None
        task = asyncio.create_task(self._deliver(row), name=f"webhook {row.id}")
        self._webhooks.add(task)
        task.add_done_callback(self._webhooks.discard)
        return task

    async def _deliver(self, row: OperationRow) -> None:
        assert self.webhook_sender is not None
        try:
            await self.webhook_sender.deliver(row)
        except Exception:
            log.exception("webhook delivery crashed", operation_id=row.id)

    async def close(self, grace_s: float = 0.0) -> None:
        """Wait up to `grace_s` for webhook deliveries in flight, then cancel them."""
        if grace_s > 0 and self._webhooks:
            await asyncio.wait(list(self._webhooks), timeout=grace_s)
        self._stopped = True
        for task in self._webhooks:
            task.cancel()
        await asyncio.gather(*self._webhooks, return_exceptions=True)
