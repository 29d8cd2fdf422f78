"""What a run record keeps of a step's input: bounded in size, secrets redacted.

`bounded(value)`: a value whose JSON is at most `MAX_STRING_CHARS` long is kept
as it is (the common case, checked at C speed: recording costs a step well
under a microsecond). A bigger one is copied with every string cut at
`MAX_STRING_CHARS`, every list and object at `MAX_ITEMS` entries, nesting at
`MAX_DEPTH`, and all its strings together at `MAX_TOTAL_CHARS`; what is cut is
marked in place (`"…[1234 more characters]"`, a last list item `"…[5 more
items]"`, an object key `"…"`). Anything not JSON becomes its `str()`.

`redact_headers`, `redact_url` and `redact_keys` replace secret-looking
header values, URL credentials and JSON values (Authorization, API keys,
tokens, passwords, cookies) with `[redacted]`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

MAX_STRING_CHARS = 4000
MAX_ITEMS = 100
MAX_DEPTH = 12
MAX_TOTAL_CHARS = 64_000
REDACTED = "[redacted]"

SECRET_NAME = re.compile(
    r"(authorization|api[-_]?key|apikey|secret|password|passwd|token|credential|cookie|"
    r"session|signature|private[-_]?key|access[-_]?key|(^|[-_])(auth|key)($|[-_]))", re.I)
_SECRET_VALUE = re.compile(r"^\s*(bearer|basic|token|digest)\s+\S", re.I)


def bounded(value: Any) -> Any:
    """`value`, or a bounded copy of it, for a run record (see the module docstring)."""
    if value is None:
        return None
    try:
        if len(orjson.dumps(value)) <= MAX_STRING_CHARS:
            return value
    except TypeError:  # orjson.JSONEncodeError too
        pass  # not plain JSON (or nested too deep): the copy makes it so
    return _Bounder().copy(value, 0)


class _Bounder:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_TOTAL_CHARS

    def text(self, value: str) -> str:
        limit = max(0, min(MAX_STRING_CHARS, self.left))
        if len(value) <= limit:
            self.left -= len(value)
            return value
        self.left -= limit
        return f"{value[:limit]}…[{len(value) - limit} more characters]"

    def copy(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.text(value)
        if depth >= MAX_DEPTH:
            return "…[nested too deep]"
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for index, (key, item) in enumerate(value.items()):
                if index >= MAX_ITEMS:
                    out["…"] = f"[{len(value) - MAX_ITEMS} more keys]"
                    break
                out[self.text(str(key))] = self.copy(item, depth + 1)
            return out
        if isinstance(value, list | tuple):
            items = [self.copy(item, depth + 1) for item in value[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS:
                items.append(f"…[{len(value) - MAX_ITEMS} more items]")
            return items
        if hasattr(value, "model_dump"):  # a pydantic model
            return self.copy(value.model_dump(mode="json", exclude_none=True), depth)
        return self.text(str(value))


def is_secret_header(name: str, value: str) -> bool:
    return bool(SECRET_NAME.search(name) or _SECRET_VALUE.match(value))


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers with secret-looking values (by name, or a `Bearer ...` value) redacted."""
    return {name: REDACTED if is_secret_header(name, value) else value
            for name, value in headers.items()}


def redact_keys(value: Any) -> Any:
    """A JSON value with the values under secret-looking keys redacted (at any depth)."""
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and SECRET_NAME.search(k) else redact_keys(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_keys(v) for v in value]
    return value


def redact_url(url: str) -> str:
    """The URL without a password and with secret-looking query parameters redacted."""
    try:
        parts = urlsplit(url)
        netloc, query = parts.netloc, parts.query
        if parts.password is not None:
            netloc = f"{parts.username or ''}:{REDACTED}@{netloc.rsplit('@', 1)[1]}"
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_NAME.search(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if SECRET_NAME.search(k) else v) for k, v in pairs],
                              safe="[]")
        if (netloc, query) == (parts.netloc, parts.query):
            return url
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return url
