"""Workflows: `/admin/workflows` (CRUD, versions), `POST /v1/workflows/<id>/execute`
(sync, or `?stream=true` as server-sent run events) and the run history."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from quart import Blueprint, Response, g, request
from quart_schema import tag

from api.admin.resources import json_object, mount
from api.jsonio import json_response
from api.state import app_state
from api.validation import query_args, responds, responds_text
from engine.errors import HeadraceError, NotFound
from engine.schemas.common import Page
from engine.workflows.schema import WorkflowSpec
from engine.workflows.service import GovernedServices, WorkflowService

blueprint = Blueprint("workflows", __name__)
TAG = ["Workflows"]

mount(blueprint, "workflow", WorkflowSpec, "workflows", "Workflow")


class ExecuteQuery(BaseModel):
    version: int | None = Field(None, ge=1, description="Run this stored version")
    stream: bool = Field(False, description="Stream run events (server-sent events)")


class StepTrace(BaseModel):
    name: str
    type: str
    success: bool
    skipped: bool
    output: Any = None
    error: str | None = None
    started_at: str
    finished_at: str
    execution_time_ms: float
    tokens: int | None = None
    cost: float | None = None


class RunResponse(BaseModel):
    run_id: str
    workflow_id: str
    success: bool
    output: Any = None
    error: str | None = None
    steps: list[StepTrace]
    execution_time_ms: float
    started_at: str
    finished_at: str


class RunSummary(BaseModel):
    id: str
    object: Literal["workflow_run"] = "workflow_run"
    workflow_id: str
    workflow_version: int
    key_id: str | None
    success: bool
    error: str | None
    execution_time_ms: float
    created_at: Any


class RunList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RunSummary]
    total: int
    limit: int
    offset: int
    has_more: bool


class RunQuery(Page):
    workflow_id: str | None = Field(None, max_length=64)


def _services() -> GovernedServices:
    state = app_state()
    return GovernedServices(state.gateway, state.knowledge, state.resources, g.principal)


def _sse(event: dict[str, Any]) -> bytes:
    return (f"event: {event['event']}\nid: {event.get('seq', '')}\n".encode()
            + b"data: " + orjson.dumps(event, default=str) + b"\n\n")


async def _stream(workflows: WorkflowService, services: GovernedServices, workflow_id: str,
                  inputs: dict[str, Any], version: int | None) -> AsyncIterator[bytes]:
    """Run events as SSE; the generator runs after the request context has gone, so
    it gets everything it needs as arguments."""
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def on_event(event: dict[str, Any]) -> None:
        await queue.put(event)

    async def run() -> None:
        try:
            await workflows.execute(workflow_id, inputs, version=version,
                                    services=services, on_event=on_event)
        except HeadraceError as error:
            await queue.put({"event": "error", "data": {"message": error.message,
                                                        "code": error.code}})
        finally:
            await queue.put(None)

    task = asyncio.ensure_future(run())
    try:
        while (event := await queue.get()) is not None:
            yield _sse(event)
    finally:
        if not task.done():  # the client went away: stop the run
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@blueprint.post("/v1/workflows/<workflow_id>/execute")
@tag(TAG)
@query_args(ExecuteQuery)
@responds(200, RunResponse)
@responds_text(200, "text/event-stream", "With `?stream=true`: run_started, step_started, "
               "step_output_delta, step_finished, run_finished events")
async def execute(workflow_id: str, query: ExecuteQuery) -> Any:
    """Run a workflow with the JSON body as its input (validated by its input_schema).

    The caller's key needs permission on the workflow and on every model and
    knowledge base it uses; usage is charged per step.
    """
    app_state().governance.authorize(g.principal, "workflows", workflow_id)
    inputs = await json_object() if (await request.get_data()).strip() else {}
    state = app_state()
    await state.workflows.compiled(workflow_id, query.version)  # 404 / 400 before streaming
    if query.stream:
        response = Response(_stream(state.workflows, _services(), workflow_id, inputs,
                                    query.version),
                            mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.timeout = None
        return response
    result = await state.workflows.execute(workflow_id, inputs, version=query.version,
                                           services=_services())
    return json_response(result.to_dict())


@blueprint.get("/admin/workflow-runs")
@tag(TAG)
@query_args(RunQuery)
@responds(200, RunList)
async def list_runs(query: RunQuery) -> dict:
    """Runs, newest first (the step traces are in each run's record)."""
    rows, total = await app_state().workflows.runs(workflow_id=query.workflow_id,
                                                   limit=query.limit, offset=query.offset)
    data = [{"id": r.id, "object": "workflow_run", "workflow_id": r.workflow_id,
             "workflow_version": r.workflow_version, "key_id": r.key_id, "success": r.success,
             "error": r.error, "execution_time_ms": r.execution_time_ms,
             "created_at": r.created_at} for r in rows]
    return {"object": "list", "data": data, "total": total, "limit": query.limit,
            "offset": query.offset, "has_more": query.offset + len(rows) < total}


@blueprint.get("/admin/workflow-runs/<run_id>")
@tag(TAG)
@responds(200, RunResponse)
async def get_run(run_id: str) -> dict:
    """One run with its per-step trace."""
    row = await app_state().workflows.run(run_id)
    if row is None:
        raise NotFound(f"workflow run '{run_id}' not found")
    return {**row.record, "workflow_version": row.workflow_version, "key_id": row.key_id}

