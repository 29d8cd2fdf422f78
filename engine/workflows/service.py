"""Run stored workflows: compile once per version, execute with the caller's
governed gateway and knowledge bases, and record the run when it ends."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.errors import InvalidRequest, PermissionDenied
from engine.governance.keys import Principal
from engine.governance.usage import cost_of
from engine.schemas.chat import ChatCompletionRequest
from engine.schemas.knowledge import KnowledgeBaseSpec, SearchRequest
from engine.store import ResourceStore
from engine.store.db import Database
from engine.store.tables import WorkflowRunRow
from engine.validation import parse_spec
from engine.workflows.events import EventBuffer
from engine.workflows.executor import RunResult, WorkflowExecutor
from engine.workflows.validate import CompiledWorkflow, load_workflow, validate_input

Event = Callable[[dict[str, Any]], Awaitable[None]]


def completion_cost(report: Any, usage: dict[str, Any] | None) -> float | None:
    """USD for a completion's usage at the prices of the model that served it (as
    `Ticket.close` charges it); None (unknown) without usage, or for a model
    without pricing (both prices 0, the default)."""
    model = getattr(report, "model", None)
    pricing = getattr(model, "pricing", None)
    if not usage or pricing is None or not (pricing.input_cost_per_token
                                            or pricing.output_cost_per_token):
        return None
    return cost_of(pricing, int(usage.get("prompt_tokens") or 0),
                   int(usage.get("completion_tokens") or 0))


class GovernedServices:
    """What steps reach, as the caller: its key's permissions, limits and budgets
    apply to every model and knowledge base a workflow uses."""

    def __init__(self, gateway: Any, knowledge: Any, resources: ResourceStore,
                 principal: Principal):
        self.gateway = gateway
        self.knowledge = knowledge
        self.resources = resources
        self.principal = principal

    async def chat(self, request: ChatCompletionRequest) -> dict[str, Any]:
        """The completion, with `cost` (USD, None when unknown) added."""
        completion, report = await self.gateway.complete(request, kind="workflow")
        return {**completion, "cost": completion_cost(report, completion.get("usage"))}

    async def chat_stream(self, request: ChatCompletionRequest
                          ) -> AsyncIterator[dict[str, Any]]:
        """Chunks of a streamed completion (for step_output_delta events); the chunk
        carrying `usage` also carries `cost` (USD, None when unknown)."""
        stream = await self.gateway.stream(request, kind="workflow")
        async for chunk in stream:
            if chunk.get("usage"):
                chunk = {**chunk, "cost": completion_cost(stream.report, chunk["usage"])}
            yield chunk

    async def search(self, kb_id: str, request: SearchRequest) -> list[dict[str, Any]]:
        if not self.principal.may("knowledge_bases", kb_id):
            raise PermissionDenied(f"API key {self.principal.key_id} may not use knowledge "
                                   f"base '{kb_id}'", code="resource_not_allowed")
        record = await self.resources.get("knowledge_base", kb_id)
        hits = await self.knowledge.search(parse_spec(KnowledgeBaseSpec, record.spec), request)
        return [{"id": h.id, "document_id": h.document_id, "content": h.content,
                 "score": h.score, "metadata": h.metadata, "chunk_index": h.chunk_index}
                for h in hits]


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex}"


class WorkflowService:
    def __init__(self, db: Database, resources: ResourceStore, events: EventBuffer, *,
                 allow_private_http: bool = False, max_concurrency: int = 8):
        self.db = db
        self.resources = resources
        self.events = events
        self.allow_private_http = allow_private_http
        self.max_concurrency = max_concurrency
        self._compiled: OrderedDict[tuple[str, int], CompiledWorkflow] = OrderedDict()
        self._background: set[asyncio.Task[RunResult]] = set()

    async def compiled(self, workflow_id: str, version: int | None) -> tuple[CompiledWorkflow,
                                                                                int]:
        if version is None:
            record = await self.resources.get("workflow", workflow_id)
            spec, version = record.spec, record.version
        else:
            key = (workflow_id, version)
            if key in self._compiled:
                return self._compiled[key], version
            await self.resources.get("workflow", workflow_id)  # 404 for an unknown workflow
            spec = (await self.resources.get_version("workflow", workflow_id, version)).spec
        key = (workflow_id, version)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = load_workflow(spec)
            if len(self._compiled) > 256:
                self._compiled.popitem(last=False)
        return compiled, version

    async def execute(self, workflow_id: str, inputs: dict[str, Any], *, version: int | None,
                      services: GovernedServices, on_event: Event | None = None,
                      run_id: str | None = None) -> RunResult:
        """Run to the end; events go to the buffer (so the run can be followed)."""
        compiled, version = await self.compiled(workflow_id, version)
        if not compiled.spec.enabled:
            raise InvalidRequest(f"workflow '{workflow_id}' is disabled", code="workflow_disabled")
        validate_input(compiled, inputs)  # a 400 now, before anything runs
        return await self._run(compiled, version, inputs, services, run_id or new_run_id(),
                               on_event)

    async def start(self, workflow_id: str, inputs: dict[str, Any], *, version: int | None,
                    services: GovernedServices) -> str:
        """Validate, then run in the background (a client may drop and re-attach to
        the events); returns the run id."""
        compiled, version = await self.compiled(workflow_id, version)
        if not compiled.spec.enabled:
            raise InvalidRequest(f"workflow '{workflow_id}' is disabled", code="workflow_disabled")
        validate_input(compiled, inputs)
        run_id = new_run_id()
        await self.events.open(run_id)
        task = asyncio.ensure_future(self._run(compiled, version, inputs, services, run_id, None))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return run_id

    async def _run(self, compiled: CompiledWorkflow, version: int, inputs: dict[str, Any],
                   services: GovernedServices, run_id: str, on_event: Event | None
                   ) -> RunResult:
        async def publish(event: dict[str, Any]) -> None:
            if event["event"] == "run_started":  # who may follow it: this key, or an admin
                event["data"]["key_id"] = services.principal.key_id
            await self.events.publish(run_id, event)
            if on_event is not None:
                await on_event(event)

        executor = WorkflowExecutor(services, max_concurrency=self.max_concurrency,
                                    allow_private_http=self.allow_private_http)
        result = await executor.run(compiled, inputs, run_id=run_id, on_event=publish,
                                    check_input=False)
        await self._record(result, version, services.principal.key_id)
        return result

    async def aclose(self) -> None:
        """Let background runs finish (bounded by their own timeouts) at shutdown."""
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _record(self, result: RunResult, version: int, key_id: str | None) -> None:
        record = result.to_dict()
        row = WorkflowRunRow(
            id=result.run_id, workflow_id=result.workflow_id, workflow_version=version,
            key_id=key_id, success=result.success, error=(result.error or None) and
            result.error[:4000], execution_time_ms=result.execution_time_ms,
            tokens=int(record.get("tokens") or 0), cost_usd=float(record.get("cost") or 0.0),
            record=record, created_at=result.started_at,
        )
        async with self.db.transaction() as session:
            session.add(row)

    async def runs(self, *, workflow_id: str | None, limit: int, offset: int
                   ) -> tuple[list[WorkflowRunRow], int]:
        query = select(WorkflowRunRow)
        if workflow_id is not None:
            query = query.where(WorkflowRunRow.workflow_id == workflow_id)
        async with self.db.session() as session:
            total = (await session.exec(
                select(sa.func.count()).select_from(query.subquery()))).one()
            rows = (await session.exec(query.order_by(col(WorkflowRunRow.created_at).desc())
                                       .limit(limit).offset(offset))).all()
        return list(rows), total

    async def owner(self, run_id: str) -> str | None:
        """The key that started a buffered run (from its run_started event)."""
        async for event in self.events.follow(run_id):
            return (event.get("data") or {}).get("key_id")
        return None

    async def delete_runs_before(self, cutoff: datetime, *, batch: int = 500) -> int:
        """Delete runs older than `cutoff` in small batches, each its own short
        transaction, so cleanup never holds a long lock on the table."""
        deleted = 0
        while True:
            async with self.db.transaction() as session:
                ids = (await session.exec(
                    select(WorkflowRunRow.id)
                    .where(col(WorkflowRunRow.created_at) < cutoff).limit(batch))).all()
                if not ids:
                    return deleted
                await session.exec(sa.delete(WorkflowRunRow)
                                   .where(col(WorkflowRunRow.id).in_(list(ids))))
            deleted += len(ids)
            await asyncio.sleep(0)  # let requests in between batches

    async def run(self, run_id: str) -> WorkflowRunRow | None:
        async with self.db.session() as session:
            return await session.get(WorkflowRunRow, run_id)
