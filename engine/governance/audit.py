"""The audit trail: one record per admin change, written with the change.

Who (the key id of the caller, from the request context), what (action,
resource type and id), when, before and after with secrets redacted, and the
request id. Admin writes are rare, so records are written inline rather than
queued: an audited change never goes unrecorded after a crash.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.context import current_request_id
from engine.store.db import Database
from engine.store.tables import AuditRow
from engine.store.types import utcnow

actor_var: ContextVar[str | None] = ContextVar("actor", default=None)
REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"secret", "key_hash", "api_key", "password", "token", "vault_token"})


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_FIELDS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class AuditLog:
    def __init__(self, db: Database):
        self.db = db

    async def record(self, action: str, resource_type: str, resource_id: str, *,
                     before: dict[str, Any] | None = None,
                     after: dict[str, Any] | None = None) -> None:
        row = AuditRow(
            created_at=utcnow(), actor_key_id=actor_var.get(), action=action,
            resource_type=resource_type, resource_id=resource_id,
            before=_jsonable(redact(before)) if before is not None else None,
            after=_jsonable(redact(after)) if after is not None else None,
            request_id=current_request_id(),
        )
        async with self.db.transaction() as session:
            session.add(row)

    async def search(self, *, limit: int, offset: int, actor_key_id: str | None = None,
                     resource_type: str | None = None, resource_id: str | None = None,
                     action: str | None = None, start: datetime | None = None,
                     end: datetime | None = None) -> tuple[list[AuditRow], int]:
        query = select(AuditRow)
        for column, value in ((AuditRow.actor_key_id, actor_key_id),
                              (AuditRow.resource_type, resource_type),
                              (AuditRow.resource_id, resource_id), (AuditRow.action, action)):
            if value is not None:
                query = query.where(column == value)
        if start is not None:
            query = query.where(col(AuditRow.created_at) >= start)
        if end is not None:
            query = query.where(col(AuditRow.created_at) < end)
        async with self.db.session() as session:
            total = (await session.exec(
                select(sa.func.count()).select_from(query.subquery()))).one()
            rows = (await session.exec(query.order_by(col(AuditRow.id).desc())
                                       .limit(limit).offset(offset))).all()
        return list(rows), total


def audit_body(row: AuditRow) -> dict[str, Any]:
    return {"id": row.id, "object": "audit_log", "created_at": row.created_at,
            "actor_key_id": row.actor_key_id, "action": row.action,
            "resource_type": row.resource_type, "resource_id": row.resource_id,
            "before": row.before, "after": row.after, "request_id": row.request_id}
