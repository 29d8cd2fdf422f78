"""Dataclasses of a parsed Hurl file (requests, responses, queries, asserts...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_NAME_RE = r"[A-Za-z_][A-Za-z0-9_-]*"


class _Missing:
    """A query that returned nothing (Hurl's ``none``); distinct from JSON ``null``."""

    def __repr__(self) -> str:
        return "none"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class _Var:
    name: str


@dataclass(frozen=True)
class _Tpl:
    """A string with ``{{name}}`` placeholders: literal parts and :class:`_Var` parts."""

    parts: tuple[str | _Var, ...]
    line: int

    @property
    def is_literal(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    @property
    def literal(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))


@dataclass
class _JsonBody:
    """JSON source with placeholders; each placeholder knows if it sits in a JSON string."""

    parts: list[str | tuple[_Var, bool]]
    line: int


@dataclass
class _Body:
    kind: str  # "json" | "text" | "bytes"
    line: int
    json: _JsonBody | None = None
    text: _Tpl | None = None
    data: bytes = b""
    content_type: str | None = None


@dataclass
class _Query:
    kind: str
    line: int
    arg: Any = None


@dataclass
class _Filter:
    name: str
    line: int
    args: tuple[Any, ...] = ()


@dataclass
class _PValue:
    kind: str  # str | num | bool | null | var | bytes | regex
    value: Any


@dataclass
class _Assert:
    line: int
    source: str
    query: _Query
    filters: list[_Filter]
    negate: bool
    op: str
    value: _PValue | None


@dataclass
class _Capture:
    line: int
    source: str
    name: str
    query: _Query
    filters: list[_Filter]
    refs: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class _Option:
    name: str
    line: int
    value: Any  # _Tpl for templated values, or a parsed literal
    var_name: str | None = None  # for ``variable: name=value``


@dataclass
class _Multipart:
    name: _Tpl
    line: int
    value: _Tpl | None = None
    file: _Tpl | None = None
    content_type: str | None = None


@dataclass
class _Request:
    line: int
    method: str
    url: _Tpl
    headers: list[tuple[_Tpl, _Tpl]] = field(default_factory=list)
    query: list[tuple[_Tpl, _Tpl]] = field(default_factory=list)
    form: list[tuple[_Tpl, _Tpl]] = field(default_factory=list)
    multipart: list[_Multipart] = field(default_factory=list)
    basic_auth: tuple[_Tpl, _Tpl] | None = None
    options: list[_Option] = field(default_factory=list)
    body: _Body | None = None


@dataclass
class _Response:
    line: int
    version: str | None
    status: int | None
    headers: list[tuple[_Tpl, _Tpl, int]] = field(default_factory=list)
    captures: list[_Capture] = field(default_factory=list)
    asserts: list[_Assert] = field(default_factory=list)
    body: _Body | None = None


@dataclass
class _Entry:
    request: _Request
    response: _Response | None = None
    request_refs: list[tuple[str, int]] = field(default_factory=list)
    response_refs: list[tuple[str, int]] = field(default_factory=list)
    option_defs: list[str] = field(default_factory=list)


@dataclass
class ParsedFile:
    filename: str
    entries: list[_Entry]
