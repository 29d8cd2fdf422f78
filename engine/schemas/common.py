"""Shapes shared by every admin resource."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic import Strict as PydanticStrict

# Seed 004: ids of admin resources are letters, digits and hyphens, at most 50.
ResourceId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,50}$", strict=True)
]
# Any name a client may send as `model` (dots, slashes and colons allowed).
Alias = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$", strict=True)
]


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def iso_only(value: Any) -> Any:
    """Refuse numbers where a timestamp is expected (pydantic reads them as Unix
    times, which hides a client's mistake)."""
    if (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
        isinstance(value, str) and _NUMBER.match(value)
    ):
        raise ValueError("expected an ISO 8601 date-time, such as 2026-11-25T12:00:00Z")
    return value


# An ISO 8601 date-time with a UTC offset (also from a string in Python mode,
# where merged updates are validated).
Timestamp = Annotated[AwareDatetime, BeforeValidator(iso_only), PydanticStrict(False)]


class Strict(BaseModel):
    """Unknown fields are an error: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


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
