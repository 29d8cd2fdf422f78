"""Helpers on runtime values: type names, display, rendering into text."""

from __future__ import annotations

import json
from typing import Any

from .errors import _LineError
from .model import MISSING


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_name(v: Any) -> str:
    if v is MISSING:
        return "none"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "bytes"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _show(v: Any, limit: int = 200) -> str:
    if v is MISSING:
        return "none (no value)"
    if isinstance(v, bytes):
        text = "hex," + v.hex() + ";"
    else:
        try:
            text = json.dumps(v, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def _render_value(v: Any, line: int, name: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if _is_num(v):
        return str(v)
    raise _LineError(line, f"variable '{name}' is a {_type_name(v)} and cannot be rendered")
