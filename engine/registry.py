"""Admin operations on versioned resources, one implementation for every kind.

A `Kind` declares what differs between models, chains, prompts and later
workflows: the schema, the client-facing names it claims (id and aliases),
and checks against other resources (a chain's steps must name models; a model
a chain uses cannot be deleted). `Registry` does the rest the same way for all:
validate, store a new version, refresh the catalog the hot path reads.

Updates are JSON merge patches (RFC 7396) over the stored spec: `PUT` with a
partial body changes only the fields given (`null` removes one). The merge and
the write are guarded by the version read, so concurrent updates never lose
each other's changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from engine.errors import InvalidRequest
from engine.governance.audit import AuditLog, actor_var
from engine.store import ResourceStore
from engine.store.resources import ResourceRecord, VersionRecord
from engine.validation import parse_spec

Check = Callable[["Registry", BaseModel], Awaitable[None]]
DeleteCheck = Callable[["Registry", str], Awaitable[None]]
AfterDelete = Callable[["Registry", ResourceRecord], Awaitable[None]]


@dataclass(frozen=True)
class Kind:
    name: str  # stored kind and the `object` field of responses
    schema: type[BaseModel]
    claims_names: bool = False  # id and `aliases` are names clients send as `model`
    checks: list[Check] = field(default_factory=list)
    delete_checks: list[DeleteCheck] = field(default_factory=list)
    after_delete: list[AfterDelete] = field(default_factory=list)  # clean up what it owned

    def names(self, spec: BaseModel) -> list[str] | None:
        if not self.claims_names:
            return None
        return [spec.id, *getattr(spec, "aliases", [])]  # type: ignore[attr-defined]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class Registry:
    def __init__(self, store: ResourceStore, kinds: list[Kind],
                 on_change: Callable[[], Awaitable[None]] | None = None,
                 audit: AuditLog | None = None):
        self.store = store
        self.kinds = {k.name: k for k in kinds}
        self.on_change = on_change
        self.audit = audit

    def add_kinds(self, kinds: list[Kind]) -> None:
        self.kinds.update({k.name: k for k in kinds})

    def kind(self, name: str) -> Kind:
        return self.kinds[name]

    async def _changed(self, action: str, kind: Kind, id: str,
                       before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        if self.audit is not None:
            await self.audit.record(action, kind.name, id, before=before, after=after)
        if self.on_change is not None:
            await self.on_change()

    async def create(self, kind: Kind, spec: BaseModel, *, actor: str | None = None
                     ) -> ResourceRecord:
        for check in kind.checks:
            await check(self, spec)
        record = await self.store.create(
            kind.name, spec.id, dump(spec), names=kind.names(spec),  # type: ignore[attr-defined]
            changed_by=actor or actor_var.get(),
        )
        await self._changed("create", kind, record.id, None, record.spec)
        return record

    async def update(self, kind: Kind, id: str, patch: dict[str, Any], *,
                     actor: str | None = None) -> ResourceRecord:
        if "id" in patch and patch["id"] != id:
            raise InvalidRequest(f"id cannot change (the path says '{id}')", param="id",
                                 code="immutable_field")
        fields = {f.alias or name for name, f in kind.schema.model_fields.items()}
        unknown = sorted(set(patch) - fields)
        if unknown:
            raise InvalidRequest(f"{unknown[0]}: Extra inputs are not permitted",
                                 param=unknown[0], code="invalid_value")
        current = await self.store.get(kind.name, id)
        merged = merge_patch(current.spec, patch)
        merged["id"] = id
        spec = parse_spec(kind.schema, merged)
        for check in kind.checks:
            await check(self, spec)
        record = await self.store.update(
            kind.name, id, dump(spec), expected_version=current.version,
            names=kind.names(spec), changed_by=actor or actor_var.get(),
        )
        await self._changed("update", kind, id, current.spec, record.spec)
        return record

    async def replace(self, kind: Kind, spec: BaseModel, *, actor: str | None = None
                      ) -> ResourceRecord:
        """Store `spec` whole as the next version of an existing resource."""
        for check in kind.checks:
            await check(self, spec)
        current = await self.store.get(kind.name, spec.id)  # type: ignore[attr-defined]
        record = await self.store.update(
            kind.name, spec.id, dump(spec), names=kind.names(spec),  # type: ignore[attr-defined]
            changed_by=actor or actor_var.get(),
        )
        await self._changed("update", kind, record.id, current.spec, record.spec)
        return record

    async def delete(self, kind: Kind, id: str) -> ResourceRecord:
        await self.store.get(kind.name, id)  # 404 before any other complaint
        for check in kind.delete_checks:
            await check(self, id)
        record = await self.store.delete(kind.name, id)
        await self._changed("delete", kind, id, record.spec, None)
        for cleanup in kind.after_delete:
            await cleanup(self, record)
        return record

    async def get(self, kind: Kind, id: str) -> ResourceRecord:
        return await self.store.get(kind.name, id)

    async def list(self, kind: Kind, *, limit: int, offset: int
                   ) -> tuple[list[ResourceRecord], int]:
        return await self.store.list(kind.name, limit=limit, offset=offset)

    async def versions(self, kind: Kind, id: str) -> list[VersionRecord]:
        return await self.store.versions(kind.name, id)

    async def version(self, kind: Kind, id: str, version: int) -> VersionRecord:
        await self.store.get(kind.name, id)
        return await self.store.get_version(kind.name, id, version)


def dump(spec: BaseModel) -> dict[str, Any]:
    """The stored form: JSON types, defaults included so a version is self-contained."""
    return spec.model_dump(mode="json", by_alias=True)
