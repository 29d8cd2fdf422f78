"""Workflows: `/admin/workflows` (CRUD, versions), `POST /v1/workflows/<id>/execute`
(sync, or `?stream=true` as server-sent run events) and the run history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from quart import Blueprint, Response, g, request
from quart_schema import tag

from api.admin.resources import json_object, mount
from api.jsonio import json_response
from api.operations import accept
from api.state import app_state
from api.validation import query_args, responds, responds_text
from engine.errors import NotFound
from engine.schemas.common import Page
from engine.workflows.events import EventBuffer
from engine.workflows.schema import WorkflowSpec
from engine.workflows.service import GovernedServices
from engine.workflows.validate import validate_input

blueprint = Blueprint("workflows", __name__)
TAG = ["Workflows"]

mount(blueprint, "workflow", WorkflowSpec, "workflows", "Workflow")


class ExecuteQuery(BaseModel):
    version: int | None = Field(None, ge=1, description="Run this stored version")
    stream: bool = Field(False, description="Stream run events (server-sent events)")
    async_: bool = Field(False, alias="async", description="Answer 202 with an operation")
    webhook_url: str | None = Field(None, max_length=2048,
                                    description="With async: POST the finished operation here")


class StepTrace(BaseModel):
    name: str
    type: str
    success: bool
    skipped: bool
    input: Any = Field(None, description=(
        "What the step received once its references were resolved (bounded; secrets in "
        "http_request headers and URLs redacted): chat_completion: the request sent "
        "(model, rendered messages, parameters); knowledge_base_search: knowledge_base_id, "
        "query, top_k, similarity_threshold, filter, hybrid; http_request: method, url, "
        "headers, body; conditional: the conditions evaluated with their values; "
        "crag_scoring: query, strategy, thresholds and the documents scored; template: "
        "the values of its references (jinja2: the variables it read). Null for a step "
        "jumped over or failing before it got that far, and in runs recorded before "
        "inputs were kept."))
    output: Any = None
    error: str | None = None
    started_at: str
    finished_at: str
    execution_time_ms: float
    tokens: int | None = None
    cost: float | None = Field(None, description="USD at the models' pricing; null when "
                               "no model it used has pricing")
    attempts: int | None = None
    warnings: list[str] = Field(default_factory=list)


class RunResponse(BaseModel):
    run_id: str
    workflow_id: str
    workflow_version: int | None = Field(None, description="In the run history only")
    key_id: str | None = Field(None, description="In the run history only")
    success: bool
    input: Any = Field(None, description="The workflow input as given (bounded)")
    output: Any = None
    error: str | None = None
    steps: list[StepTrace]
    execution_time_ms: float
    started_at: str
    finished_at: str
    tokens: int | None = None
    cost: float | None = Field(None, description="The steps' cost in USD; null when none "
                               "is known")
    warnings: list[str] = Field(default_factory=list)


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


async def _follow(events: EventBuffer, run_id: str, after: int) -> AsyncIterator[bytes]:
    """A run's events as SSE. Runs after the request context is gone, so it gets
    what it needs as arguments; a client that drops leaves the run going."""
    async for event in events.follow(run_id, after):
        yield _sse(event)


def _event_stream(events: EventBuffer, run_id: str, after: int = 0) -> Response:
    response = Response(_follow(events, run_id, after), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["x-headrace-run-id"] = run_id
    response.timeout = None
    return response


@blueprint.post("/v1/workflows/<workflow_id>/execute")
@tag(TAG)
@query_args(ExecuteQuery)
@responds(200, RunResponse)
@responds_text(200, "text/event-stream", "With `?stream=true`: run_started (with the input), "
               "step_started, step_output_delta, step_finished (with the step's input, "
               "output, tokens and cost), run_finished events")
async def execute(workflow_id: str, query: ExecuteQuery) -> Any:
    """Run a workflow with the JSON body as its input (validated by its input_schema).

    The caller's key needs permission on the workflow and on every model and
    knowledge base it uses; usage is charged per step.
    """
    app_state().governance.authorize(g.principal, "workflows", workflow_id)
    inputs = await json_object() if (await request.get_data()).strip() else {}
    state = app_state()
    if query.async_:
        compiled, _ = await state.workflows.compiled(workflow_id, query.version)
        validate_input(compiled, inputs)  # a 400 now, not a failed operation later
        return await accept("workflow", {"workflow_id": workflow_id, "input": inputs,
                                         "version": query.version},
                            webhook_url=query.webhook_url)
    if query.stream:
        run_id = await state.workflows.start(workflow_id, inputs, version=query.version,
                                             services=_services())
        return _event_stream(state.workflows.events, run_id)
    result = await state.workflows.execute(workflow_id, inputs, version=query.version,
                                           services=_services())
    return json_response(result.to_dict())


class FollowQuery(BaseModel):
    after: int = Field(0, ge=0, le=2**31, description="Only events after this sequence "
                       "number (or send Last-Event-ID)")


@blueprint.get("/v1/workflow-runs/<run_id>/events")
@tag(TAG)
@query_args(FollowQuery)
@responds_text(200, "text/event-stream", "The run's events so far, then live ones")
async def follow_run(run_id: str, query: FollowQuery) -> Response:
    """Re-attach to a run: replays the events after `after` (or Last-Event-ID),
    then follows the run until it finishes. Events are kept for a while after
    the run; the durable record is at /admin/workflow-runs/<id>."""
    state = app_state()
    missing = NotFound(f"no events for workflow run '{run_id}' (unknown, or expired: see "
                       f"/admin/workflow-runs/{run_id})")
    if not await state.workflows.events.known(run_id):
        raise missing
    principal = g.principal
    if not principal.admin and await state.workflows.owner(run_id) != principal.key_id:
        raise missing  # another key's run: not even its existence is told
    after = query.after
    last_event = request.headers.get("Last-Event-ID", "")
    if last_event.isdigit():
        after = max(after, int(last_event))
    return _event_stream(state.workflows.events, run_id, after)


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
    """One run: its input, output, and per-step trace (each step's input, output,
    timing, tokens and cost). Runs recorded before inputs were kept have `input: null`."""
    row = await app_state().workflows.run(run_id)
    if row is None:
        raise NotFound(f"workflow run '{run_id}' not found")
    record = row.record
    return {"input": None, **record,
            "steps": [{"input": None, **step} for step in record.get("steps") or ()],
            "workflow_version": row.workflow_version, "key_id": row.key_id}

