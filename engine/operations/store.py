"""The operations repository: rows, guarded status transitions, listing, expiry.

Every transition is one conditional `UPDATE ... WHERE status IN (...)`, so two
concurrent transitions (a cancel racing a completion) cannot both win: the
loser sees a `Conflict`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from engine.errors import Conflict, InvalidRequest, NotFound
from engine.store.db import Database
from engine.store.tables import OperationRow, WebhookDeliveryRow
from engine.store.types import utcnow

OPERATION_TYPES = frozenset({"chat_completion", "workflow", "ingestion"})
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
FINISHED = frozenset({"completed", "failed", "cancelled"})

# target status -> the statuses it may be reached from
_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "running": ("pending",),
    "completed": ("running",),
    "failed": ("running",),
    "cancelled": ("pending", "running"),
}

_ID = re.compile(r"^op-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_PAGE = 100


def new_operation_id() -> str:
    return f"op-{uuid.uuid4()}"


def check_operation_id(operation_id: str, param: str = "operation_id") -> str:
    if not isinstance(operation_id, str) or not _ID.match(operation_id):
        raise InvalidRequest(f"malformed operation id: {str(operation_id)[:80]!r}",
                             param=param, code="invalid_operation_id")
    return operation_id


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def operation_body(row: OperationRow) -> dict[str, Any]:
    """The public representation of an operation (GET body and webhook payload)."""
    return {
        "object": "operation",
        "operation_id": row.id,
        "type": row.type,
        "status": row.status,
        "result": row.result,
        "error": row.error,
        "progress": row.progress,
        "created_at": _unix(row.created_at),
        "started_at": _unix(row.started_at),
        "finished_at": _unix(row.finished_at),
        "updated_at": _unix(row.updated_at),
    }


def _scope(scope_team_id: str | None, scope_key_id: str | None) -> list[Any]:
    """A team scope wins: a key sees its team's operations; a key without a team
    sees its own; no scope (admin) sees everything."""
    if scope_team_id is not None:
        return [OperationRow.team_id == scope_team_id]
    if scope_key_id is not None:
        return [OperationRow.key_id == scope_key_id]
    return []


class OperationStore:
    def __init__(self, db: Database):
        self.db = db

    async def create(self, type: str, request: dict[str, Any], *, key_id: str | None = None,
                     team_id: str | None = None, webhook_url: str | None = None,
                     ) -> OperationRow:
        if type not in OPERATION_TYPES:
            raise InvalidRequest(f"unknown operation type {type!r}", param="type")
        now = utcnow()
        row = OperationRow(id=new_operation_id(), type=type, status="pending", key_id=key_id,
                           team_id=team_id, request=request, webhook_url=webhook_url,
                           created_at=now, updated_at=now)
        async with self.db.transaction() as session:
            session.add(row)
        return row

    async def get(self, operation_id: str, *, scope_team_id: str | None = None,
                  scope_key_id: str | None = None) -> OperationRow:
        check_operation_id(operation_id)
        query = select(OperationRow).where(OperationRow.id == operation_id,
                                           *_scope(scope_team_id, scope_key_id))
        async with self.db.session() as session:
            row = (await session.exec(query)).first()
        if row is None:
            raise NotFound(f"no operation {operation_id}", param="operation_id")
        return row

    async def get_many(self, ids: Sequence[str], *, scope_team_id: str | None = None,
                       scope_key_id: str | None = None) -> list[OperationRow]:
        """The visible operations among `ids`, in the order asked; unknown ids are left out."""
        for operation_id in ids:
            check_operation_id(operation_id, param="ids")
        if not ids:
            return []
        if len(ids) > MAX_PAGE:
            raise InvalidRequest(f"at most {MAX_PAGE} ids at a time", param="ids")
        query = select(OperationRow).where(OperationRow.id.in_(list(ids)),  # type: ignore[union-attr]
                                           *_scope(scope_team_id, scope_key_id))
        async with self.db.session() as session:
            found = {row.id: row for row in (await session.exec(query)).all()}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def list(self, *, status: str | None = None, type: str | None = None,
                   scope_team_id: str | None = None, scope_key_id: str | None = None,
                   limit: int = 20, after: str | None = None,
                   ) -> tuple[list[OperationRow], bool]:
        """Newest first. `after` is the id of the last operation of the previous page.
        Returns the page and whether more follow."""
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"unknown status {status!r}", param="status")
        if type is not None and type not in OPERATION_TYPES:
            raise InvalidRequest(f"unknown operation type {type!r}", param="type")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        conditions = _scope(scope_team_id, scope_key_id)
        if status is not None:
            conditions.append(OperationRow.status == status)
        if type is not None:
            conditions.append(OperationRow.type == type)
        if after is not None:
            cursor = await self.get(after, scope_team_id=scope_team_id,
                                    scope_key_id=scope_key_id)
            conditions.append(sa.or_(
                OperationRow.created_at < cursor.created_at,
                sa.and_(OperationRow.created_at == cursor.created_at,
                        OperationRow.id < cursor.id),
            ))
        query = (select(OperationRow).where(*conditions)
                 .order_by(sa.desc(OperationRow.created_at), sa.desc(OperationRow.id))
                 .limit(limit + 1))
        async with self.db.session() as session:
            rows = list((await session.exec(query)).all())
        return rows[:limit], len(rows) > limit

    async def transition(self, operation_id: str, to: str, *,
                         result: dict[str, Any] | None = None,
                         error: dict[str, Any] | None = None,
                         progress: dict[str, Any] | None = None,
                         worker: str | None = None, attempt: int | None = None,
                         ) -> OperationRow:
        """Move an operation to `to`, only from a status allowed to reach it (and,
        with `attempt`, only while that attempt is the latest)."""
        check_operation_id(operation_id)
        allowed = _ALLOWED_FROM.get(to)
        if allowed is None:
            raise InvalidRequest(f"cannot move an operation to {to!r}", param="status")
        now = utcnow()
        values: dict[str, Any] = {"status": to, "updated_at": now}
        if to == "running":
            values.update(started_at=now, worker=worker, attempts=OperationRow.attempts + 1)
        else:
            values["finished_at"] = now
        if result is not None:
            values["result"] = result
        if error is not None:
            values["error"] = error
        if progress is not None:
            values["progress"] = progress
        return await self._update(operation_id, allowed, to, values, attempt)

    async def claim(self, operation_id: str, worker: str) -> OperationRow:
        """Start a pending operation, or take over one left `running` by an attempt
        that crashed or failed transiently (at-least-once delivery)."""
        check_operation_id(operation_id)
        now = utcnow()
        values = {"status": "running", "updated_at": now, "worker": worker,
                  "attempts": OperationRow.attempts + 1,
                  "started_at": sa.func.coalesce(OperationRow.started_at, now)}
        return await self._update(operation_id, ("pending", "running"), "running", values)

    async def _update(self, operation_id: str, allowed: Sequence[str], to: str,
                      values: dict[str, Any], attempt: int | None = None) -> OperationRow:
        conditions = [OperationRow.id == operation_id,
                      OperationRow.status.in_(allowed)]  # type: ignore[attr-defined]
        if attempt is not None:
            conditions.append(OperationRow.attempts == attempt)
        statement = sa.update(OperationRow).where(*conditions).values(**values)
        async with self.db.transaction() as session:
            changed = (await session.exec(statement)).rowcount
        row = await self.get(operation_id)
        if not changed:
            raise Conflict(f"operation {operation_id} is {row.status}; it cannot become {to}",
                           param="operation_id", code="invalid_transition")
        return row

    async def discard(self, operation_id: str) -> None:
        """Delete an operation nobody was told about (its submission failed)."""
        async with self.db.transaction() as session:
            await session.exec(sa.delete(OperationRow).where(
                OperationRow.id == operation_id))  # type: ignore[arg-type]

    async def counts(self) -> dict[str, int]:
        """How many operations are in each status (the queue depth is `pending`)."""
        query = (select(OperationRow.status, sa.func.count())
                 .group_by(OperationRow.status))  # type: ignore[arg-type]
        async with self.db.session() as session:
            found = dict((await session.exec(query)).all())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    async def set_progress(self, operation_id: str, progress: dict[str, Any], *,
                           attempt: int | None = None) -> bool:
        """Store progress while the operation runs; False once it has left `running`
        (or, with `attempt`, once a newer attempt took it over)."""
        conditions = [OperationRow.id == operation_id, OperationRow.status == "running"]
        if attempt is not None:
            conditions.append(OperationRow.attempts == attempt)
        statement = (sa.update(OperationRow).where(*conditions)  # type: ignore[arg-type]
                     .values(progress=progress, updated_at=utcnow()))
        async with self.db.transaction() as session:
            return bool((await session.exec(statement)).rowcount)

    async def with_status(self, status: str) -> list[OperationRow]:
        query = (select(OperationRow).where(OperationRow.status == status)
                 .order_by(OperationRow.created_at, OperationRow.id))  # type: ignore[arg-type]
        async with self.db.session() as session:
            return list((await session.exec(query)).all())

    async def interrupted(self) -> list[OperationRow]:
        """Operations left `running`: at start-up these were cut off by a crash."""
        return await self.with_status("running")

    async def delete_expired(self, before: datetime, *, batch_size: int = 500) -> int:
        """Delete operations that finished before `before` (and their deliveries),
        `batch_size` at a time so no transaction holds many locks."""
        deleted = 0
        while True:
            query = (select(OperationRow.id)
                     .where(OperationRow.status.in_(FINISHED),  # type: ignore[attr-defined]
                            OperationRow.finished_at < before)  # type: ignore[operator]
                     .limit(batch_size))
            async with self.db.transaction() as session:
                ids = list((await session.exec(query)).all())
                if ids:
                    await session.exec(sa.delete(WebhookDeliveryRow).where(
                        WebhookDeliveryRow.operation_id.in_(ids)))  # type: ignore[attr-defined]
                    await session.exec(sa.delete(OperationRow).where(
                        OperationRow.id.in_(ids)))  # type: ignore[union-attr]
            deleted += len(ids)
            if len(ids) < batch_size:
                return deleted

    async def record_delivery(self, operation_id: str, attempt: int, *,
                              status_code: int | None = None,
                              error: str | None = None) -> None:
        row = WebhookDeliveryRow(operation_id=operation_id, attempt=attempt,
                                 status_code=status_code,
                                 error=None if error is None else error[:2000],
                                 created_at=utcnow())
        async with self.db.transaction() as session:
            session.add(row)

    async def deliveries(self, operation_id: str) -> list[WebhookDeliveryRow]:
        query = (select(WebhookDeliveryRow)
                 .where(WebhookDeliveryRow.operation_id == operation_id)
                 .order_by(WebhookDeliveryRow.attempt))  # type: ignore[arg-type]
        async with self.db.session() as session:
            return list((await session.exec(query)).all())
