"""CRUD routes for a registry kind, declared once and mounted per kind.

`GET /admin/<kind>s` lists (paged), `POST` creates (201), `GET|PUT|PATCH|DELETE
/admin/<kind>s/<id>` read, merge-patch and delete, and `/versions` gives the
history. Responses are the stored spec plus `object`, `version` and times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model
from quart import Blueprint, request
from quart_schema import tag
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE, DataSource

from api.state import app_state
from api.validation import json_body, query_args, responds
from engine.errors import InvalidRequest, UnsupportedMediaType
from engine.schemas.common import Deleted, Page, Version
from engine.store.resources import ResourceRecord, VersionRecord

Describe = Callable[[ResourceRecord], Awaitable[dict[str, Any]]]


class VersionList(BaseModel):
    object: str = "list"
    data: list[Version]


def resource_body(record: ResourceRecord) -> dict[str, Any]:
    return {
        "object": record.kind,
        **record.spec,
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def version_body(record: VersionRecord) -> dict[str, Any]:
    return {"version": record.version, "created_at": record.created_at,
            "changed_by": record.changed_by, "spec": record.spec}


async def json_object() -> dict[str, Any]:
    """The body as a JSON object, for merge patches (validated after merging)."""
    mimetype = request.mimetype
    if mimetype not in ("application/json", "application/merge-patch+json"):
        raise UnsupportedMediaType(
            f"Expected Content-Type application/json, got {mimetype or 'none'}"
        )
    raw = await request.get_data(as_text=False)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"Request body is not valid JSON: {error}",
                             code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object", code="invalid_body")
    return data


def mount(bp: Blueprint, kind: str, schema: type[BaseModel], path: str,
          title: str, *, describe: Describe | None = None,
          extra_fields: dict[str, Any] | None = None) -> type[BaseModel]:
    """Add the CRUD routes of registry kind `kind` under `/admin/<path>`.

    `describe` adds live fields (counts, health) to a single resource's GET;
    `extra_fields` declares them for the document.
    """
    resource = create_model(
        f"{schema.__name__.removesuffix('Spec')}Resource",
        __base__=schema,
        object=(str, Field(kind)),
        version=(int, ...),
        created_at=(datetime, ...),
        updated_at=(datetime, ...),
        **(extra_fields or {}),
    )
    listing = create_model(
        f"{schema.__name__.removesuffix('Spec')}List",
        object=(str, "list"),
        data=(list[resource], ...),  # type: ignore[valid-type]
        total=(int, ...),
        limit=(int, ...),
        offset=(int, ...),
        has_more=(bool, ...),
    )
    patch = create_model(
        f"{schema.__name__.removesuffix('Spec')}Patch",
        __config__=ConfigDict(extra="forbid"),
        **{name: (info.annotation | None, None)  # type: ignore[operator]
           for name, info in schema.model_fields.items()},
    )
    base = f"/admin/{path}"
    plural = f"{title}s"

    def registry():
        state = app_state()
        return state.registry, state.registry.kind(kind)

    @bp.get(base, endpoint=f"list_{kind}s")
    @tag([plural])
    @query_args(Page)
    @responds(200, listing)
    async def list_(query: Page) -> dict:
        reg, k = registry()
        records, total = await reg.list(k, limit=query.limit, offset=query.offset)
        return {
            "object": "list", "data": [resource_body(r) for r in records], "total": total,
            "limit": query.limit, "offset": query.offset,
            "has_more": query.offset + len(records) < total,
        }

    @bp.post(base, endpoint=f"create_{kind}")
    @tag([plural])
    @json_body(schema)
    @responds(201, resource)
    async def create(body: BaseModel) -> tuple[dict, int]:
        reg, k = registry()
        return resource_body(await reg.create(k, body)), 201

    @bp.get(f"{base}/<id>", endpoint=f"get_{kind}")
    @tag([plural])
    @responds(200, resource)
    async def get(id: str) -> dict:
        reg, k = registry()
        record = await reg.get(k, id)
        body = resource_body(record)
        if describe is not None:
            body.update(await describe(record))
        return body

    async def update(id: str) -> dict:
        reg, k = registry()
        return resource_body(await reg.update(k, id, await json_object()))

    update.__doc__ = (
        f"Update a {title.lower()}: a JSON merge patch (RFC 7396) of its fields; fields not "
        "given keep their value, `null` resets one to its default. Stores a new version."
    )
    setattr(update, QUART_SCHEMA_REQUEST_ATTRIBUTE, (patch, DataSource.JSON))
    for method in ("PUT", "PATCH"):
        bp.add_url_rule(
            f"{base}/<id>", f"{method.lower()}_{kind}",
            tag([plural])(responds(200, resource)(update)), methods=[method],
        )

    @bp.delete(f"{base}/<id>", endpoint=f"delete_{kind}")
    @tag([plural])
    @responds(200, Deleted)
    async def delete(id: str) -> dict:
        reg, k = registry()
        record = await reg.delete(k, id)
        return {"id": record.id, "object": kind, "deleted": True}

    @bp.get(f"{base}/<id>/versions", endpoint=f"{kind}_versions")
    @tag([plural])
    @responds(200, VersionList)
    async def versions(id: str) -> dict:
        reg, k = registry()
        return {"object": "list", "data": [version_body(v) for v in await reg.versions(k, id)]}

    @bp.get(f"{base}/<id>/versions/<int:version>", endpoint=f"{kind}_version")
    @tag([plural])
    @responds(200, Version)
    async def version(id: str, version: int) -> dict:
        reg, k = registry()
        return version_body(await reg.version(k, id, version))

    for view, doc in (
        (list_, f"List {plural.lower()}, ordered by id."),
        (create, f"Create a {title.lower()}."),
        (get, f"Get a {title.lower()}."),
        (delete, f"Delete a {title.lower()} and its history."),
        (versions, f"Every stored version of a {title.lower()}, oldest first."),
        (version, f"One stored version of a {title.lower()}."),
    ):
        view.__doc__ = doc
    return resource
