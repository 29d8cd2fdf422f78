"""Versioned storage of admin resources (models, chains, prompts, workflows...).

One repository serves every kind: a resource is an id, a version and a JSON
spec that its pydantic schema validated. Each write also appends the spec to
`resource_versions`, so history is kept for every kind alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from engine.errors import Conflict, NotFound
from engine.store.db import Database
from engine.store.tables import ResourceRow, ResourceVersionRow
from engine.store.types import utcnow


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    kind: str
    id: str
    version: int
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ResourceRow) -> ResourceRecord:
        return cls(row.kind, row.id, row.version, row.spec, row.created_at, row.updated_at)


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: int
    spec: dict[str, Any]
    created_at: datetime
    changed_by: str | None


class ResourceStore:
    def __init__(self, db: Database):
        self.db = db

    async def create(
        self, kind: str, id: str, spec: dict[str, Any], *, changed_by: str | None = None
    ) -> ResourceRecord:
        now = utcnow()
        row = ResourceRow(kind=kind, id=id, version=1, spec=spec, created_at=now, updated_at=now)
        try:
            async with self.db.transaction() as session:
                session.add(row)
                session.add(
                    ResourceVersionRow(
                        kind=kind, id=id, version=1, spec=spec, created_at=now,
                        changed_by=changed_by,
                    )
                )
        except IntegrityError:
            raise Conflict(f"{kind} '{id}' already exists", param="id") from None
        return ResourceRecord.from_row(row)

    async def get(self, kind: str, id: str) -> ResourceRecord:
        async with self.db.session() as session:
            row = await session.get(ResourceRow, (kind, id))
        if row is None:
            raise NotFound(f"{kind} '{id}' not found")
        return ResourceRecord.from_row(row)

    async def list(
        self, kind: str, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[ResourceRecord], int]:
        async with self.db.session() as session:
            total = (
                await session.exec(
                    select(sa.func.count()).select_from(ResourceRow).where(ResourceRow.kind == kind)
                )
            ).one()
            rows = (
                await session.exec(
                    select(ResourceRow)
                    .where(ResourceRow.kind == kind)
                    .order_by(col(ResourceRow.id))
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return [ResourceRecord.from_row(r) for r in rows], total

    async def all(self, kind: str) -> list[ResourceRecord]:
        async with self.db.session() as session:
            rows = (
                await session.exec(select(ResourceRow).where(ResourceRow.kind == kind))
            ).all()
        return [ResourceRecord.from_row(r) for r in rows]

    async def update(
        self,
        kind: str,
        id: str,
        spec: dict[str, Any],
        *,
        expected_version: int | None = None,
        changed_by: str | None = None,
    ) -> ResourceRecord:
        """Store `spec` as the next version.

        With `expected_version`, the write happens only if nobody else wrote
        since that version was read (a read-merge-write of a partial update
        must not lose a concurrent change); otherwise it is a Conflict.
        """
        now = utcnow()
        condition = (col(ResourceRow.kind) == kind) & (col(ResourceRow.id) == id)
        if expected_version is not None:
            condition &= col(ResourceRow.version) == expected_version
        async with self.db.transaction() as session:
            result = await session.exec(
                sa.update(ResourceRow)
                .where(condition)
                .values(version=ResourceRow.version + 1, spec=spec, updated_at=now)
                .returning(ResourceRow.version, ResourceRow.created_at)
            )
            updated = result.first()
            if updated is None:
                exists = await session.get(ResourceRow, (kind, id))
                if exists is None:
                    raise NotFound(f"{kind} '{id}' not found")
                raise Conflict(
                    f"{kind} '{id}' was changed by another request (now version "
                    f"{exists.version}); read it again and retry"
                )
            version, created_at = updated
            session.add(
                ResourceVersionRow(
                    kind=kind, id=id, version=version, spec=spec, created_at=now,
                    changed_by=changed_by,
                )
            )
        return ResourceRecord(kind, id, version, spec, created_at, now)

    async def delete(self, kind: str, id: str) -> ResourceRecord:
        """Delete a resource and its history; returns what was deleted."""
        async with self.db.transaction() as session:
            row = await session.get(ResourceRow, (kind, id))
            if row is None:
                raise NotFound(f"{kind} '{id}' not found")
            record = ResourceRecord.from_row(row)
            await session.delete(row)
            await session.exec(
                sa.delete(ResourceVersionRow).where(
                    (col(ResourceVersionRow.kind) == kind) & (col(ResourceVersionRow.id) == id)
                )
            )
        return record

    async def versions(self, kind: str, id: str) -> list[VersionRecord]:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(ResourceVersionRow)
                    .where(
                        (col(ResourceVersionRow.kind) == kind)
                        & (col(ResourceVersionRow.id) == id)
                    )
                    .order_by(col(ResourceVersionRow.version))
                )
            ).all()
        if not rows:
            raise NotFound(f"{kind} '{id}' not found")
        return [VersionRecord(r.version, r.spec, r.created_at, r.changed_by) for r in rows]

    async def get_version(self, kind: str, id: str, version: int) -> VersionRecord:
        async with self.db.session() as session:
            row = await session.get(ResourceVersionRow, (kind, id, version))
        if row is None:
            raise NotFound(f"{kind} '{id}' has no version {version}")
        return VersionRecord(row.version, row.spec, row.created_at, row.changed_by)
