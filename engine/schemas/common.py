"""Shapes shared by every admin resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Seed 004: ids of admin resources are letters, digits and hyphens, at most 50.
ResourceId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,50}$", strict=True)
]
# Any name a client may send as `model` (dots, slashes and colons allowed).
Alias = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$", strict=True)
]


class Strict(BaseModel):
    """Unknown fields are an error: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Page(BaseModel):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=2**31 - 1)


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool = True


class Version(BaseModel):
    version: int
    created_at: datetime
    changed_by: str | None = None
    spec: dict[str, Any]
