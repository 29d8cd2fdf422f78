"""`/admin/api-keys`, `/admin/teams` and `/admin/audit-logs`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import tag
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE, DataSource

from api.admin.resources import json_object, mount
from api.state import app_state
from api.validation import json_body, query_args, responds
from engine.errors import InvalidRequest, NotFound
from engine.governance.audit import audit_body
from engine.governance.keys import key_body
from engine.registry import merge_patch
from engine.schemas.common import Deleted, Page, Timestamp
from engine.schemas.governance import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyUpdate,
    KeyStatus,
    Permissions,
    RateLimits,
    TeamSpec,
)
from engine.validation import parse_spec

blueprint = Blueprint("admin_keys", __name__)
mount(blueprint, "team", TeamSpec, "teams", "Team")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ApiKey]
    total: int
    limit: int
    offset: int
    has_more: bool


class KeyQuery(Page):
    team_id: str | None = Field(None, max_length=64)
    status: KeyStatus | None = None


async def _check_team(team_id: str | None) -> None:
    if team_id is not None:
        try:
            await app_state().resources.get("team", team_id)
        except NotFound:
            raise InvalidRequest(f"team_id: no team '{team_id}'", param="team_id") from None


async def _changed(action: str, key_id: str, before: Any, after: Any) -> None:
    state = app_state()
    state.authenticator.invalidate()
    await state.audit.record(action, "api_key", key_id,
                             before=key_body(before) if before is not None else None,
                             after=key_body(after) if after is not None else None)


@blueprint.get("/admin/api-keys")
@tag(["API keys"])
@query_args(KeyQuery)
@responds(200, KeyList)
async def list_keys(query: KeyQuery) -> dict:
    """List API keys (never their secrets or hashes)."""
    rows, total = await app_state().keys.list(limit=query.limit, offset=query.offset,
                                              team_id=query.team_id, status=query.status)
    return {"object": "list", "data": [key_body(r) for r in rows], "total": total,
            "limit": query.limit, "offset": query.offset,
            "has_more": query.offset + len(rows) < total}


@blueprint.post("/admin/api-keys")
@tag(["API keys"])
@json_body(ApiKeyCreate)
@responds(201, ApiKeyCreated)
async def create_key(body: ApiKeyCreate) -> tuple[dict, int]:
    """Create a key. The `secret` is in this response only: it is stored hashed."""
    await _check_team(body.team_id)
    row, secret = await app_state().keys.create(body)
    await _changed("create", row.id, None, row)
    return {**key_body(row), "secret": secret}, 201


@blueprint.get("/admin/api-keys/<key_id>")
@tag(["API keys"])
@responds(200, ApiKey)
async def get_key(key_id: str) -> dict:
    """Get a key."""
    return key_body(await app_state().keys.get(key_id))


async def update_key(key_id: str) -> dict:
    state = app_state()
    patch = await json_object()
    parse_spec(ApiKeyUpdate, patch)  # unknown fields and wrong types name the field
    row = await state.keys.get(key_id)
    current = {"name": row.name, "team_id": row.team_id, "admin": row.admin,
               "permissions": row.permissions, "rate_limits": row.rate_limits,
               "expires_at": row.expires_at.isoformat() if row.expires_at else None,
               "metadata": row.metadata_}
    merged = parse_spec(ApiKeyUpdate, merge_patch(current, patch))
    if merged.name is None:
        raise InvalidRequest("name: cannot be removed", param="name")
    await _check_team(merged.team_id)
    before, after = await state.keys.update(key_id, {
        "name": merged.name, "team_id": merged.team_id, "admin": bool(merged.admin),
        "permissions": (merged.permissions or Permissions()).model_dump(mode="json"),
        "rate_limits": (merged.rate_limits or RateLimits()).model_dump(mode="json"),
        "expires_at": merged.expires_at, "metadata_": merged.metadata or {},
    })
    await _changed("update", key_id, before, after)
    return key_body(after)


update_key.__doc__ = "Update a key (a merge patch); the secret never changes."
setattr(update_key, QUART_SCHEMA_REQUEST_ATTRIBUTE, (ApiKeyUpdate, DataSource.JSON))
for _method in ("PUT", "PATCH"):
    blueprint.add_url_rule(
        "/admin/api-keys/<key_id>", f"{_method.lower()}_key",
        tag(["API keys"])(responds(200, ApiKey)(update_key)), methods=[_method],
    )


@blueprint.delete("/admin/api-keys/<key_id>")
@tag(["API keys"])
@responds(200, Deleted)
async def delete_key(key_id: str) -> dict:
    """Delete a key; requests with it fail at once."""
    row = await app_state().keys.delete(key_id)
    await _changed("delete", key_id, row, None)
    return {"id": key_id, "object": "api_key", "deleted": True}


def _status_action(action: str, status: KeyStatus):
    async def change(key_id: str) -> dict:
        before, after = await app_state().keys.set_status(key_id, status)
        await _changed(action, key_id, before, after)
        return key_body(after)

    change.__doc__ = {"suspend": "Suspend a key (reversible with activate).",
                      "activate": "Activate a suspended key; a revoked key cannot be (409).",
                      "revoke": "Revoke a key for good."}[action]
    change.__name__ = f"{action}_key"
    return change


for _action, _status in (("suspend", "suspended"), ("activate", "active"),
                         ("revoke", "revoked")):
    blueprint.add_url_rule(
        f"/admin/api-keys/<key_id>/{_action}", f"{_action}_key",
        tag(["API keys"])(responds(200, ApiKey)(_status_action(_action, _status))),
        methods=["POST"],
    )


class AuditQuery(Page):
    actor_key_id: str | None = Field(None, max_length=64)
    resource_type: str | None = Field(None, max_length=32)
    resource_id: str | None = Field(None, max_length=128)
    action: str | None = Field(None, max_length=32)
    start: Timestamp | None = None
    end: Timestamp | None = None


class AuditRecord(BaseModel):
    id: int
    object: Literal["audit_log"] = "audit_log"
    created_at: datetime
    actor_key_id: str | None
    action: str
    resource_type: str
    resource_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class AuditList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AuditRecord]
    total: int
    limit: int
    offset: int
    has_more: bool


@blueprint.get("/admin/audit-logs")
@tag(["Audit"])
@query_args(AuditQuery)
@responds(200, AuditList)
async def audit_logs(query: AuditQuery) -> dict:
    """Admin changes, newest first, with filters."""
    rows, total = await app_state().audit.search(
        limit=query.limit, offset=query.offset, actor_key_id=query.actor_key_id,
        resource_type=query.resource_type, resource_id=query.resource_id,
        action=query.action, start=query.start, end=query.end)
    return {"object": "list", "data": [audit_body(r) for r in rows], "total": total,
            "limit": query.limit, "offset": query.offset,
            "has_more": query.offset + len(rows) < total}
