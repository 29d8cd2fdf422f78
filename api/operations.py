"""Async operations: `?async=true` on chat and workflow execution answers 202 with
an operation; `/v1/operations` reads, lists and cancels them."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import tag

from api.errors import status_and_type
from api.jsonio import dumps, json_response
from api.state import app_state
from api.validation import query_args, responds
from engine.errors import HeadraceError, InvalidRequest
from engine.governance.keys import Principal
from engine.governance.pipeline import calls_var, principal_var
from engine.operations import operation_body
from engine.schemas.chat import ChatCompletionRequest
from engine.workflows.service import GovernedServices

blueprint = Blueprint("operations", __name__)
TAG = ["Operations"]


class Accepted(BaseModel):
    operation_id: str
    status: Literal["pending"]


class Operation(BaseModel):
    operation_id: str
    type: str
    status: Literal["pending", "running", "completed", "failed", "cancelled"]
    result: Any = None
    error: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None


class OperationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Operation]
    has_more: bool


class OperationQuery(BaseModel):
    ids: str | None = Field(None, max_length=4000, description="Comma-separated ids (batch)")
    status: Literal["pending", "running", "completed", "failed", "cancelled"] | None = None
    type: Literal["chat_completion", "workflow", "ingestion"] | None = None
    limit: int = Field(20, ge=1, le=100)
    after: str | None = Field(None, max_length=64, description="Page after this id")


def describe_error(error: HeadraceError) -> dict[str, Any]:
    """The same OpenAI error body the synchronous call would have answered."""
    _, kind = status_and_type(error)
    return {"message": error.message, "type": kind, "param": error.param, "code": error.code}


def scope(principal: Principal) -> dict[str, str | None]:
    """A key sees its own team's operations (or its own, without a team); admins all."""
    if principal.admin:
        return {"scope_team_id": None, "scope_key_id": None}
    if principal.team_id:
        return {"scope_team_id": principal.team_id, "scope_key_id": None}
    return {"scope_team_id": None, "scope_key_id": principal.key_id}


async def accept(type: str, request: dict[str, Any], webhook_url: str | None = None) -> Any:
    """Enqueue an operation as the caller; 202 with its id and where to look."""
    state = app_state()
    if webhook_url is not None and state.settings.webhook_secret is None:
        raise InvalidRequest("webhook_url needs HEADRACE_WEBHOOK_SECRET on the server",
                             param="webhook_url")
    principal: Principal = g.principal
    row = await state.operations.submit(type, request, key_id=principal.key_id,
                                        team_id=principal.team_id, webhook_url=webhook_url)
    return json_response({"operation_id": row.id, "status": "pending"}, status=202,
                         headers={"Location": f"/v1/operations/{row.id}"})


async def _as_caller(row: Any) -> Principal:
    """Run as the key that asked: its permissions, limits and budgets apply then."""
    state = app_state()
    principal = Principal.of(await state.keys.get(row.key_id))
    principal_var.set(principal)
    calls_var.set([0])
    return principal


def handlers(state: Any) -> dict[str, Any]:
    async def chat(row: Any, progress: Any) -> dict[str, Any]:
        await _as_caller(row)
        request = ChatCompletionRequest.model_validate(row.request)
        completion, _report = await state.governed.complete(request)
        return completion

    async def workflow(row: Any, progress: Any) -> dict[str, Any]:
        principal = await _as_caller(row)
        services = GovernedServices(state.governed, state.knowledge, state.resources,
                                    principal)
        result = await state.workflows.execute(
            row.request["workflow_id"], row.request.get("input") or {},
            version=row.request.get("version"), services=services)
        return result.to_dict()

    async def ingestion(row: Any, progress: Any) -> dict[str, Any]:
        from api.knowledge import run_ingestion  # the same code as the synchronous call

        await _as_caller(row)
        # Stored as JSON: the documents' datetimes as the API writes them.
        return orjson.loads(dumps(await run_ingestion(row, progress)))

    return {"chat_completion": chat, "workflow": workflow, "ingestion": ingestion}


@blueprint.get("/v1/operations/<operation_id>")
@tag(TAG)
@responds(200, Operation)
async def get_operation(operation_id: str) -> Any:
    """An operation: status, result (the body the synchronous call returns), error,
    progress and timestamps."""
    row = await app_state().operations.store.get(operation_id, **scope(g.principal))
    return json_response(operation_body(row))


@blueprint.get("/v1/operations")
@tag(TAG)
@query_args(OperationQuery)
@responds(200, OperationList)
async def list_operations(query: OperationQuery) -> Any:
    """Operations of the caller's team, newest first; `?ids=a,b` reads a batch."""
    store = app_state().operations.store
    if query.ids is not None:
        ids = [i.strip() for i in query.ids.split(",") if i.strip()]
        rows = await store.get_many(ids, **scope(g.principal))
        return json_response({"object": "list", "data": [operation_body(r) for r in rows],
                              "has_more": False})
    rows, has_more = await store.list(status=query.status, type=query.type,
                                      limit=query.limit, after=query.after,
                                      **scope(g.principal))
    return json_response({"object": "list", "data": [operation_body(r) for r in rows],
                          "has_more": has_more})


@blueprint.delete("/v1/operations/<operation_id>")
@tag(TAG)
@responds(200, Operation)
async def cancel_operation(operation_id: str) -> Any:
    """Cancel: a pending operation never starts, a running one is interrupted (its
    upstream request aborted); a finished one is a 409."""
    row = await app_state().operations.cancel(operation_id, **scope(g.principal))
    return json_response(operation_body(row))


class QueueDepth(BaseModel):
    mode: Literal["embedded", "distributed"]
    operations: dict[str, int] = Field(description="Operations by status")
    queue: dict[str, int] = Field(description="`queued` (waiting) and `in_progress`")
    workers: int = Field(description="Processes running operations (live workers)")


@blueprint.get("/admin/operations/queue")
@tag(TAG)
@responds(200, QueueDepth)
async def queue_depth() -> Any:
    """How much work waits and who runs it: operations by status, the queue's
    waiting and running jobs, and the live workers."""
    return json_response(await app_state().operations.depth())
