"""The embedded runner: executes stored operations in-process, a bounded number
at a time.

State lives in the database (see `store.py`), so a restart loses nothing: on
`start()`, operations left `running` are failed with a reason (or resumed when
their type is declared resumable) and pending ones are scheduled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Collection
from typing import Any

from engine import errors as e
from engine.logs import get_logger
from engine.operations.executor import (
    DescribeError,
    Handler,
    OperationExecutor,
    default_describe_error,
)
from engine.operations.store import OperationStore
from engine.operations.webhooks import WebhookSender
from engine.store.tables import OperationRow

INTERRUPTED = "interrupted by a restart"
log = get_logger(__name__)


def worker_name(kind: str) -> str:
    """Who runs an operation, as stored on it: `<kind>:<host>:<pid>`."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"[:128]


class OperationRunner:
    def __init__(self, store: OperationStore, handlers: dict[str, Handler], *,
                 max_concurrency: int = 4, webhook_sender: WebhookSender | None = None,
                 describe_error: DescribeError = default_describe_error,
                 resumable_types: Collection[str] = (), progress_interval_s: float = 0.5):
        self.executor = OperationExecutor(store, handlers, webhook_sender=webhook_sender,
                                          describe_error=describe_error,
                                          progress_interval_s=progress_interval_s)
        self.store = store
        self.handlers = self.executor.handlers
        self.webhook_sender = webhook_sender
        self.resumable_types = frozenset(resumable_types)
        self.worker = worker_name("embedded")
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False  # no new submissions

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
                self.executor.send_webhook(failed)
        for row in await self.store.with_status("pending"):
            if row.id not in self._tasks:
                self._schedule(row.id)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop: wait up to `grace_s` for running work and its webhooks, then cancel
        the rest. Cancelled work stays `running`/`pending` in the store and is
        recovered by the next `start()`."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        if grace_s > 0 and self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=grace_s)
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.executor.close(max(0.0, deadline - loop.time()))

    # --- API --------------------------------------------------------------------------

    async def submit(self, type: str, request: dict[str, Any], *, key_id: str | None = None,
                     team_id: str | None = None, webhook_url: str | None = None,
                     ) -> OperationRow:
        row = await self.executor.create(type, request, key_id=key_id, team_id=team_id,
                                         webhook_url=webhook_url, closing=self._closing)
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
        self.executor.send_webhook(row)
        return row

    async def wait(self, operation_id: str) -> None:
        """Wait until this runner is done with the operation (for tests and tools)."""
        task = self._tasks.get(operation_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def depth(self) -> dict[str, Any]:
        """Operations by status and this process's share of them (the only runner)."""
        counts = await self.store.counts()
        return {"mode": "embedded", "operations": counts,
                "queue": {"queued": counts["pending"], "in_progress": counts["running"]},
                "workers": 1}

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
                    row = await self.store.transition(operation_id, "running",
                                                      worker=self.worker)
            except (e.Conflict, e.NotFound):
                return  # cancelled (or deleted) while it waited
            await self.executor.execute(row)
