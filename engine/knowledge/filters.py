"""Metadata filters: one JSON shape for search, workflow steps and the UI.

A condition `{"field": "year", "operator": "gte", "value": 2020}` or a group
`{"operator": "AND", "conditions": [...]}` (or `OR`), nested to any depth.
`field` may be dotted for nested metadata; `exists` / `notExists` take no
`value`; `in` / `notIn` take a list. Backends translate the parsed tree into
their native filter language.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "contains", "startsWith", "endsWith",
                   "in", "notIn", "exists", "notExists"]
Scalar = str | int | float | bool

MAX_DEPTH = 16
# Dotted paths into metadata: `year`, `author.name`.
FIELD_PATTERN = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=256, pattern=FIELD_PATTERN)
    operator: Operator
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        op = self.operator
        if op in ("exists", "notExists"):
            if self.value is not None:
                raise ValueError(f"operator {op} takes no value")
        elif op in ("in", "notIn"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"operator {op} needs a non-empty list value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"operator {op} needs a single value")
        if op in ("gt", "gte", "lt", "lte") and isinstance(self.value, bool):
            raise ValueError(f"operator {op} needs a number or a string")
        if op in ("contains", "startsWith", "endsWith") and not isinstance(self.value, str):
            raise ValueError(f"operator {op} needs a string value")
        return self

    @property
    def path(self) -> list[str]:
        return self.field.split(".")


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: Literal["AND", "OR"]
    conditions: list[Annotated[Union[Condition, Group], Field(union_mode="left_to_right")]] = Field(  # noqa: UP007
        min_length=1, max_length=100)


Filter = Condition | Group


def parse_filter(data: Any) -> Filter | None:
    """Validate a filter (raises pydantic's ValidationError naming the problem)."""
    if data is None:
        return None
    if isinstance(data, dict) and data.get("operator") in ("AND", "OR"):
        group = Group.model_validate(data)
        _check_depth(group, 1)
        return group
    return Condition.model_validate(data)


def _check_depth(group: Group, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"filter nested deeper than {MAX_DEPTH} levels")
    for item in group.conditions:
        if isinstance(item, Group):
            _check_depth(item, depth + 1)
