"""Scripted behaviours: in-message directives, queued responses and global defaults.

A request's behaviour is resolved in three layers, later ones winning:
global config (``/_mock/config``) < directives in the last user message
(``[[mock:key=value]]``) < the next queued script response (``/_mock/script``).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

DIRECTIVE_MARK = "[[mock:"
_DIRECTIVE = re.compile(r"\[\[mock:([a-z_]+)=(.*?)\]\]", re.DOTALL)

_INT_KEYS = frozenset({"status", "break_after"})
_FLOAT_KEYS = frozenset({"delay_ms", "ttft_ms", "chunk_delay_ms"})
_TEXT_KEYS = frozenset({"reply", "tool", "retry_after"})
_JSON_KEYS = frozenset({"tool_args"})
DIRECTIVE_KEYS = _INT_KEYS | _FLOAT_KEYS | _TEXT_KEYS | _JSON_KEYS


@dataclass(slots=True)
class Config:
    """Global defaults, changed by ``POST /_mock/config``."""

    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    chunk_delay_ms: float = 0.0

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        for key, value in values.items():
            setattr(self, key, float(value or 0))

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Behaviour:
    """Everything that shapes one response."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_ms: float = 0.0
    ttft_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    break_after: int | None = None
    reply: str | None = None
    tool: str | None = None
    tool_args: Any = None
    retry_after: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> Behaviour:
        return cls(
            delay_ms=config.latency_ms, ttft_ms=config.ttft_ms,
            chunk_delay_ms=config.chunk_delay_ms,
        )

    def apply(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key == "headers":
                self.headers.update({str(k): str(v) for k, v in (value or {}).items()})
            elif key == "body":
                self.body = value
            elif key in _INT_KEYS:
                setattr(self, key, None if value is None else int(value))
            elif key in _FLOAT_KEYS:
                setattr(self, key, float(value or 0))
            elif key in _TEXT_KEYS:
                setattr(self, key, None if value is None else str(value))
            elif key in _JSON_KEYS:
                setattr(self, key, value)
            else:
                raise ValueError(f"unknown behaviour key: {key!r}")

    @property
    def is_error(self) -> bool:
        return self.status >= 400


def parse_directives(text: str) -> tuple[str, dict[str, Any]]:
    """Split ``[[mock:key=value]]`` directives out of a message text."""
    if DIRECTIVE_MARK not in text:
        return text, {}
    found: dict[str, Any] = {}
    for key, raw in _DIRECTIVE.findall(text):
        if key not in DIRECTIVE_KEYS:
            continue
        found[key] = orjson.loads(raw) if key in _JSON_KEYS else raw.strip()
    return _DIRECTIVE.sub("", text).strip(), found


def validate_response(entry: dict[str, Any]) -> dict[str, Any]:
    """Check a scripted response up front so a typo fails the test that made it."""
    if not isinstance(entry, dict):
        raise ValueError("each scripted response must be an object")
    Behaviour().apply(entry)
    return dict(entry)


@dataclass(slots=True)
class Script:
    """A queue of responses for the requests that match."""

    responses: deque[dict[str, Any]]
    match: dict[str, str] = field(default_factory=dict)

    def matches(self, vendor: str, path: str, model: str | None) -> bool:
        want_model = self.match.get("model")
        if want_model is not None and want_model != model:
            return False
        want_vendor = self.match.get("vendor")
        if want_vendor is not None and want_vendor != vendor:
            return False
        want_path = self.match.get("path")
        return want_path is None or want_path in path


_MATCH_KEYS = frozenset({"model", "path", "vendor"})


class ScriptBook:
    """All queued scripts; a request pops from the first one that matches."""

    def __init__(self) -> None:
        self._scripts: list[Script] = []

    def add(self, responses: list[dict[str, Any]], match: dict[str, str] | None) -> int:
        match = dict(match or {})
        unknown = set(match) - _MATCH_KEYS
        if unknown:
            raise ValueError(f"unknown match keys: {sorted(unknown)}")
        queue = deque(validate_response(r) for r in responses)
        if queue:
            self._scripts.append(Script(queue, match))
        return len(queue)

    def pop(self, vendor: str, path: str, model: str | None) -> dict[str, Any] | None:
        for index, script in enumerate(self._scripts):
            if script.matches(vendor, path, model):
                response = script.responses.popleft()
                if not script.responses:
                    del self._scripts[index]
                return response
        return None

    def pending(self) -> int:
        return sum(len(s.responses) for s in self._scripts)

    def __bool__(self) -> bool:
        return bool(self._scripts)

    def clear(self) -> None:
        self._scripts.clear()
