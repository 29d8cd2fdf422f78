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
from sqlmodel.ext.asyncio.session import AsyncSession

from engine.errors import Conflict, NotFound
from engine.store.db import Database
from engine.store.tables import ResourceNameRow, ResourceRow, ResourceVersionRow
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
        self,
        kind: str,
        id: str,
        spec: dict[str, Any],
        *,
        names: list[str] | None = None,
        changed_by: str | None = None,
    ) -> ResourceRecord:
        """Store a new resource. `names` (id and aliases) must be unused by any resource."""
        now = utcnow()
        row = ResourceRow(kind=kind, id=id, version=1, spec=spec, created_at=now, updated_at=now)
        try:
            async with self.db.transaction() as session:
                if await session.get(ResourceRow, (kind, id)) is not None:
                    raise Conflict(f"{kind} '{id}' already exists", param="id")
                await _claim_names(session, kind, id, names)
                session.add(row)
                session.add(
                    ResourceVersionRow(
                        kind=kind, id=id, version=1, spec=spec, created_at=now,
                        changed_by=changed_by,
                    )
                )
        except IntegrityError:  # a concurrent create won the race
            raise Conflict(f"{kind} '{id}' or one of its names already exists") from None
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
        names: list[str] | None = None,
        changed_by: str | None = None,
    ) -> ResourceRecord:
        """Store `spec` as the next version (and `names`, if given, as its names).

        With `expected_version`, the write happens only if nobody else wrote
        since that version was read (a read-merge-write of a partial update
        must not lose a concurrent change); otherwise it is a Conflict.
        """
        now = utcnow()
        condition = (col(ResourceRow.kind) == kind) & (col(ResourceRow.id) == id)
        if expected_version is not None:
            condition &= col(ResourceRow.version) == expected_version
        try:
            return await self._update(kind, id, spec, condition, now, names, changed_by)
        except IntegrityError:
            raise Conflict(f"one of the names of {kind} '{id}' was just taken") from None

    async def _update(
        self,
        kind: str,
        id: str,
        spec: dict[str, Any],
        condition: Any,
        now: Any,
        names: list[str] | None,
        changed_by: str | None,
    ) -> ResourceRecord:
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
            await _claim_names(session, kind, id, names)
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
            await _release_names(session, kind, id)
        return record

    async def fingerprint(self) -> tuple[int, int, datetime | None]:
        """Changes whenever any resource is created, updated or deleted (count,
        version sum, latest update): a cheap way to know a reload is needed."""
        async with self.db.session() as session:
            count, versions, latest = (await session.exec(select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(ResourceRow.version), 0),
                sa.func.max(ResourceRow.updated_at),
            ))).one()
        return int(count), int(versions), latest

    async def resolve_name(self, name: str) -> tuple[str, str] | None:
        """The (kind, id) a client-facing name refers to, if any."""
        async with self.db.session() as session:
            row = await session.get(ResourceNameRow, name)
        return (row.kind, row.id) if row else None

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


async def _release_names(session: AsyncSession, kind: str, id: str) -> None:
    await session.exec(
        sa.delete(ResourceNameRow).where(
            (col(ResourceNameRow.kind) == kind) & (col(ResourceNameRow.id) == id)
        )
    )


async def _claim_names(
    session: AsyncSession, kind: str, id: str, names: list[str] | None
) -> None:
    """Make `names` exactly the names of (kind, id); a name held by another is a Conflict."""
    if names is None:
        return
    taken = (
        await session.exec(select(ResourceNameRow).where(col(ResourceNameRow.name).in_(names)))
    ).all()
    for row in taken:
        if (row.kind, row.id) != (kind, id):
            raise Conflict(
                f"name '{row.name}' is already used by {row.kind} '{row.id}'", param="aliases"
            )
    await _release_names(session, kind, id)
    await session.flush()
    session.add_all([ResourceNameRow(name=n, kind=kind, id=id) for n in dict.fromkeys(names)])
