"""pydantic's validation errors as one `InvalidRequest` that names the field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def field_path(loc: Iterable[int | str]) -> str:
    """`("messages", 0, "role")` -> `messages[0].role`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def invalid_from(error: ValidationError, *, prefix: str = "") -> InvalidRequest:
    """One 400 for all of pydantic's complaints; `param` is the first field."""
    problems = []
    first_param = None
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = field_path([*((prefix and [prefix]) or []), *loc])
        first_param = first_param or path or None
        message = item["msg"]
        if item["type"] == "json_invalid":
            return InvalidRequest(
                f"Request body is not valid JSON: {item['ctx'].get('error', message)}",
                code="invalid_json",
            )
        if item["type"] == "model_type" and not loc:
            return InvalidRequest("Request body must be a JSON object", code="invalid_body")
        problems.append(f"{path}: {message}" if path else message)
    return InvalidRequest("; ".join(problems), param=first_param, code="invalid_value")


def parse_spec(schema: type[M], data: Any) -> M:
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise invalid_from(error) from None
