"""A strict, pure-Python runner for Hurl files (https://hurl.dev/docs/hurl-file.html).

It lets the project's ``hurl/*.hurl`` suites run under pytest without the ``hurl`` binary,
while the same files stay valid for ``hurl --test --variable base_url=...``.

The runner is strict on purpose: anything it does not understand (an unknown section,
query, filter, predicate or option, a malformed line, an undefined variable) is an error
that names the file and line. Nothing is silently ignored.

Semantics follow Hurl:

* entries run in order; the first failing entry stops the file (like ``hurl --test``);
* the implicit ``HTTP <status>`` assert is checked first; if it fails, captures and
  other asserts of that entry are not evaluated;
* captures run before asserts, so asserts can use values captured by the same entry;
* a query that returns nothing (``jsonpath`` on a missing key, a missing header, ...)
  makes every predicate false, so ``exists`` fails and ``not <predicate>`` passes;
* a filter applied to nothing, or a predicate applied to a value of the wrong type
  (``contains`` on a number, ``>`` on a string vs a number), is an error even with ``not``;
* JSONPath returns a single value for a "definite" path (only keys and single indices)
  and a list as soon as it contains a wildcard, a filter, a slice, a union or ``..``;
* ``retry`` re-runs the whole entry (request, captures, asserts) until it passes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import html
import ipaddress
import json
import mimetypes
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from jsonpath_ng import jsonpath as jp
from jsonpath_ng.ext import parse as _jsonpath_parse

__all__ = [
    "EntryResult",
    "HurlError",
    "HurlResult",
    "ParsedFile",
    "parse_text",
    "run_file",
    "run_text",
]

METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
BUILTINS = frozenset({"newUuid", "newDate"})
BODY_EXCERPT = 500
DEFAULT_RETRY_INTERVAL_MS = 1000
USER_AGENT = "hurl-python-runner"


# --------------------------------------------------------------------------- public API


class HurlError(Exception):
    """A Hurl file is invalid, or one of its entries failed. ``failures`` has every message."""

    def __init__(self, failures: list[str] | str) -> None:
        self.failures = [failures] if isinstance(failures, str) else list(failures)
        super().__init__("\n".join(self.failures))


@dataclass
class EntryResult:
    line: int
    method: str
    url: str
    status: int | None = None
    duration_ms: int = 0
    captures: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    skipped: bool = False


@dataclass
class HurlResult:
    file: str
    entries: list[EntryResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            raise HurlError(self.failures)


def run_file(
    path: str | Path,
    variables: dict[str, Any] | None = None,
    base_url: str | None = None,
    *,
    client: httpx.Client | None = None,
    timeout: float = 60.0,
) -> HurlResult:
    """Run a ``.hurl`` file. ``base_url`` is a shorthand for ``variables["base_url"]``.

    Relative paths in ``[MultipartFormData]`` are resolved from the file's directory.
    """
    path = Path(path)
    variables = dict(variables or {})
    if base_url is not None:
        variables["base_url"] = base_url
    return run_text(
        path.read_text(encoding="utf-8"),
        variables,
        filename=path.name,
        base_dir=path.parent,
        client=client,
        timeout=timeout,
    )


def run_text(
    text: str,
    variables: dict[str, Any] | None = None,
    filename: str = "<text>",
    *,
    base_url: str | None = None,
    base_dir: str | Path | None = None,
    client: httpx.Client | None = None,
    timeout: float = 60.0,
) -> HurlResult:
    """Parse and run Hurl source ``text``.

    Parse errors and undefined variables raise :class:`HurlError` before any request is
    sent. Runtime failures (asserts, HTTP errors) are collected in the returned result;
    call :meth:`HurlResult.raise_for_failures` to turn them into an exception.

    ``variables`` values given as strings are typed like ``hurl --variable``: ``true``,
    ``false``, ``null``, integers and floats become typed values, ``"quoted"`` is a string.
    """
    parsed = parse_text(text, filename)
    values: dict[str, Any] = {}
    for name, value in (variables or {}).items():
        if not re.fullmatch(_NAME_RE, name):
            raise HurlError(f"{filename}: invalid variable name {name!r}")
        values[name] = _infer_value(value) if isinstance(value, str) else value
    if base_url is not None:
        values["base_url"] = base_url
    _check_variables(parsed, set(values))
    own_client = client is None
    if client is None:
        client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        # curl (and so hurl) only asks for compression with --compressed.
        client.headers.pop("Accept-Encoding", None)
    try:
        runner = _Runner(parsed, values, Path(base_dir) if base_dir else Path.cwd(), client)
        return runner.run()
    finally:
        if own_client:
            client.close()


# --------------------------------------------------------------------------- AST

_NAME_RE = r"[A-Za-z_][A-Za-z0-9_-]*"


class _Missing:
    """A query that returned nothing (Hurl's ``none``); distinct from JSON ``null``."""

    def __repr__(self) -> str:
        return "none"


MISSING: Any = _Missing()


class _LineError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


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


# --------------------------------------------------------------------------- parser

_QUOTED_ESCAPES = {
    '"': '"', "\\": "\\", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
}
_VALUE_ESCAPES = {**_QUOTED_ESCAPES, "#": "#", ":": ":"}
del _VALUE_ESCAPES['"']
_BACKTICK_ESCAPES = {**_QUOTED_ESCAPES, "`": "`", "#": "#"}
del _BACKTICK_ESCAPES['"']

_METHOD_LINE = re.compile(r"([A-Z]+)[ \t]+([^:\s].*)")
_RESPONSE_LINE = re.compile(r"HTTP(/[^\s]*)?(?:[ \t]+(.*))?")
_SECTION_LINE = re.compile(r"\[([A-Za-z]+)\]")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?(?![A-Za-z0-9_.])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(\d+)(ms|s|m)?")

_REQUEST_SECTIONS = {
    "QueryStringParams": "query", "Query": "query",
    "FormParams": "form", "Form": "form",
    "MultipartFormData": "multipart", "Multipart": "multipart",
    "BasicAuth": "basicauth", "Options": "options", "Cookies": "cookies",
}
_RESPONSE_SECTIONS = {"Captures": "captures", "Asserts": "asserts"}

_NOARG_QUERIES = {"status", "version", "url", "body", "bytes", "duration", "sha256", "md5"}
_STRING_QUERIES = {"header", "jsonpath", "variable"}
_UNSUPPORTED_QUERIES = {"cookie", "xpath", "certificate", "ip", "redirects"}

_NOARG_FILTERS = {
    "count", "first", "last", "toInt", "toFloat", "toString", "urlDecode", "urlEncode",
    "base64Decode", "base64Encode", "base64UrlSafeDecode", "base64UrlSafeEncode", "toHex",
    "utf8Decode", "utf8Encode", "htmlEscape", "htmlUnescape",
}
_UNSUPPORTED_FILTERS = {
    "daysAfterNow", "daysBeforeNow", "format", "dateFormat", "toDate", "xpath", "location",
}

_VALUE_PREDICATES = {
    "==", "!=", ">", ">=", "<", "<=", "contains", "startsWith", "endsWith", "matches",
    "includes",
}
_NOARG_PREDICATES = {
    "exists", "isCollection", "isString", "isInteger", "isFloat", "isNumber", "isBoolean",
    "isEmpty", "isList", "isObject", "isIsoDate", "isDate", "isUuid", "isIpv4", "isIpv6",
}
_LEGACY_PREDICATES = {
    "equals": "==", "notEquals": "!=", "greaterThan": ">", "greaterThanOrEquals": ">=",
    "lessThan": "<", "lessThanOrEquals": "<=", "startWith": "startsWith",
    "endWith": "endsWith", "contain": "contains", "match": "matches", "exist": "exists",
    "include": "includes",
}

_BOOL_OPTIONS = {"location", "skip", "verbose", "very-verbose"}
_OPTIONS = {"retry", "retry-interval", "delay", "variable", *_BOOL_OPTIONS}


def parse_text(text: str, filename: str = "<text>") -> ParsedFile:
    """Parse Hurl source strictly; raise :class:`HurlError` naming the line on any problem."""
    try:
        return ParsedFile(filename, _Parser(text).parse())
    except _LineError as exc:
        raise HurlError(f"{filename}:{exc.line}: {exc.message}") from None


def _strip_comment(text: str) -> str:
    """Cut an unescaped ``#`` comment (outside ``{{ }}``) off a key/value or header line."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if text.startswith("{{", i):
            end = text.find("}}", i + 2)
            if end < 0:
                break
            i = end + 2
            continue
        if c == "#":
            return text[:i].rstrip()
        i += 1
    return text.rstrip()


def _is_blank(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines = re.split(r"\r?\n", text)
        self.pos = 0
        self.sink: list[tuple[str, int]] = []

    # -- helpers

    @property
    def lineno(self) -> int:
        return self.pos + 1

    def error(self, message: str, line: int | None = None) -> _LineError:
        return _LineError(line if line is not None else self.lineno, message)

    def eof(self) -> bool:
        return self.pos >= len(self.lines)

    def skip_blank(self) -> None:
        while not self.eof() and _is_blank(self.lines[self.pos]):
            self.pos += 1

    def template(self, src: str, line: int, escapes: dict[str, str] | None) -> _Tpl:
        parts: list[str | _Var] = []
        buf: list[str] = []
        i = 0
        while i < len(src):
            c = src[i]
            if src.startswith("{{", i):
                end = src.find("}}", i + 2)
                if end < 0:
                    raise self.error(f"unterminated placeholder in {src!r}", line)
                name = src[i + 2 : end].strip()
                if not re.fullmatch(_NAME_RE, name):
                    raise self.error(
                        f"invalid placeholder {src[i : end + 2]!r}: only {{{{variable}}}} "
                        "names are supported",
                        line,
                    )
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(_Var(name))
                self.sink.append((name, line))
                i = end + 2
                continue
            if escapes is not None and c == "\\":
                if i + 1 >= len(src):
                    raise self.error(f"dangling backslash in {src!r}", line)
                nxt = src[i + 1]
                if nxt == "u":
                    m = re.compile(r"\\u\{([0-9a-fA-F]{1,6})\}").match(src, i)
                    if not m:
                        raise self.error(f"invalid unicode escape in {src!r} (use \\u{{41}})", line)
                    buf.append(chr(int(m.group(1), 16)))
                    i = m.end()
                    continue
                if nxt not in escapes:
                    raise self.error(f"invalid escape sequence '\\{nxt}' in {src!r}", line)
                buf.append(escapes[nxt])
                i += 2
                continue
            buf.append(c)
            i += 1
        if buf:
            parts.append("".join(buf))
        return _Tpl(tuple(parts), line)

    def key_value(self, raw: str, line: int) -> tuple[_Tpl, str]:
        """Split ``key: value``; return the key template and the raw (comment-free) value."""
        i = 0
        sep = -1
        while i < len(raw):
            if raw[i] == "\\":
                i += 2
                continue
            if raw.startswith("{{", i):
                end = raw.find("}}", i + 2)
                i = end + 2 if end >= 0 else len(raw)
                continue
            if raw[i] == "#":
                break
            if raw[i] == ":":
                sep = i
                break
            i += 1
        if sep < 0:
            raise self.error(f"malformed line {raw.strip()!r}: expected 'name: value'", line)
        key = raw[:sep].strip()
        if not key or re.search(r"\s", key):
            raise self.error(f"malformed line {raw.strip()!r}: invalid name {key!r}", line)
        value = _strip_comment(raw[sep + 1 :]).strip()
        return self.template(key, line, _VALUE_ESCAPES), value

    def section_name(self, stripped: str) -> str | None:
        m = _SECTION_LINE.fullmatch(_strip_comment(stripped))
        if not m or m.group(1) in ("true", "false", "null"):
            return None
        return m.group(1)

    def is_method_line(self, stripped: str) -> bool:
        m = _METHOD_LINE.fullmatch(stripped)
        return bool(m) and m.group(1) != "HTTP"

    def is_response_line(self, stripped: str) -> bool:
        return bool(re.match(r"HTTP(/\S*)?([ \t]|$)", stripped))

    # -- file / entries

    def parse(self) -> list[_Entry]:
        entries = []
        while True:
            self.skip_blank()
            if self.eof():
                return entries
            entries.append(self.entry())

    def entry(self) -> _Entry:
        stripped = self.lines[self.pos].strip()
        m = _METHOD_LINE.fullmatch(_strip_comment(stripped))
        if not m or m.group(1) == "HTTP":
            raise self.error(f"expected a request line 'METHOD URL', got {stripped!r}")
        method, rest = m.group(1), m.group(2).strip()
        if method not in METHODS:
            raise self.error(f"unknown HTTP method {method!r}")
        if not rest or re.search(r"\s", rest):
            raise self.error(f"malformed request line {stripped!r}: expected 'METHOD URL'")
        entry = _Entry(_Request(self.lineno, method, _Tpl((), self.lineno)))
        self.sink = entry.request_refs
        entry.request.url = self.template(rest, self.lineno, _VALUE_ESCAPES)
        self.pos += 1
        self.request(entry)
        if not self.eof() and self.is_response_line(self.lines[self.pos].strip()):
            self.sink = entry.response_refs
            entry.response = self.response(entry)
        return entry

    def request(self, entry: _Entry) -> None:
        req = entry.request
        section: str | None = None
        seen: set[str] = set()
        while True:
            self.skip_blank()
            if self.eof():
                return
            raw = self.lines[self.pos]
            stripped = raw.strip()
            line = self.lineno
            if self.is_method_line(_strip_comment(stripped)) or self.is_response_line(stripped):
                return
            name = self.section_name(stripped)
            if name is not None:
                if name in _RESPONSE_SECTIONS:
                    raise self.error(f"section [{name}] is only allowed after the 'HTTP' line")
                if name not in _REQUEST_SECTIONS:
                    raise self.error(f"unknown section [{name}]")
                section = _REQUEST_SECTIONS[name]
                if section == "cookies":
                    raise self.error(
                        "[Cookies] is not supported by this runner; use a Cookie header"
                    )
                if section in seen:
                    raise self.error(f"duplicate section [{name}]")
                seen.add(section)
                self.pos += 1
                continue
            if self.is_body_start(stripped):
                req.body = self.body(json_content_type=True)
                self.expect_after_body(("request", "response"))
                return
            if section is None:
                key, value = self.key_value(raw, line)
                req.headers.append((key, self.template(value, line, _VALUE_ESCAPES)))
            elif section in ("query", "form"):
                key, value = self.key_value(raw, line)
                getattr(req, section).append((key, self.template(value, line, _VALUE_ESCAPES)))
            elif section == "multipart":
                req.multipart.append(self.multipart_param(raw, line))
            elif section == "basicauth":
                if req.basic_auth is not None:
                    raise self.error("[BasicAuth] takes a single 'user: password' line")
                key, value = self.key_value(raw, line)
                req.basic_auth = (key, self.template(value, line, _VALUE_ESCAPES))
            elif section == "options":
                req.options.append(self.option(raw, line, entry))
            self.pos += 1

    def is_body_start(self, stripped: str) -> bool:
        if stripped.startswith("{{"):
            return False
        return stripped.startswith(("{", "[", "`", "base64,", "hex,", "file,", "<"))

    def expect_after_body(self, allowed: tuple[str, ...]) -> None:
        self.skip_blank()
        if self.eof():
            return
        stripped = self.lines[self.pos].strip()
        if self.is_method_line(_strip_comment(stripped)):
            return
        if "response" in allowed and self.is_response_line(stripped):
            return
        raise self.error(f"unexpected line after the body: {stripped!r} (the body must be last)")

    def multipart_param(self, raw: str, line: int) -> _Multipart:
        key, value = self.key_value(raw, line)
        if not value.startswith("file,"):
            return _Multipart(key, line, value=self.template(value, line, _VALUE_ESCAPES))
        m = re.fullmatch(r"file,\s*([^;]+?)\s*;\s*(.*)", value)
        if not m:
            raise self.error(f"malformed file parameter {value!r}: expected 'file,path; [type]'")
        ctype = m.group(2).strip() or None
        return _Multipart(
            key, line, file=self.template(m.group(1), line, _VALUE_ESCAPES), content_type=ctype
        )

    def option(self, raw: str, line: int, entry: _Entry) -> _Option:
        key, value = self.key_value(raw, line)
        name = key.literal
        if not key.is_literal or name not in _OPTIONS:
            raise self.error(
                f"unknown or unsupported option {name!r} (supported: {', '.join(sorted(_OPTIONS))})"
            )
        if name == "variable":
            m = re.fullmatch(rf"({_NAME_RE})=(.*)", value)
            if not m:
                raise self.error(f"malformed option 'variable: {value}': expected name=value")
            entry.option_defs.append(m.group(1))
            return _Option(name, line, self.typed_literal(m.group(2).strip(), line), m.group(1))
        tpl = self.template(value, line, _VALUE_ESCAPES)
        if tpl.is_literal:
            return _Option(name, line, _check_option(name, tpl.literal, line))
        return _Option(name, line, tpl)

    def typed_literal(self, value: str, line: int) -> Any:
        """A variable value: null/true/false/number, a "quoted" string, else a template."""
        if value in ("null", "true", "false") or _NUMBER.fullmatch(value):
            return _infer_value(value)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return self.template(value[1:-1], line, _QUOTED_ESCAPES)
        return self.template(value, line, _VALUE_ESCAPES)

    # -- bodies

    def body(self, json_content_type: bool) -> _Body:
        raw = self.lines[self.pos]
        stripped = raw.strip()
        line = self.lineno
        if stripped.startswith("```"):
            tpl, lang = self.multiline(stripped[3:], line)
            ctype = "application/json" if lang == "json" and json_content_type else None
            return _Body("text", line, text=tpl, content_type=ctype)
        if stripped.startswith("`"):
            cur = _Cursor(self, stripped, line)
            tpl = cur.backtick()
            cur.expect_end("the body")
            self.pos += 1
            return _Body("text", line, text=tpl)
        if stripped.startswith(("{", "[")):
            body = self.json_body(raw, line)
            return _Body("json", line, json=body,
                         content_type="application/json" if json_content_type else None)
        if stripped.startswith(("base64,", "hex,")):
            data = self.bytes_literal(line)
            return _Body("bytes", line, data=data)
        if stripped.startswith("file,"):
            raise self.error("file,...; bodies are not supported by this runner")
        raise self.error("XML bodies are not supported by this runner; use a ``` multiline string")

    def multiline(self, opener: str, line: int) -> tuple[_Tpl, str]:
        """Read a ``` multiline string whose opening fence is on the current line."""
        spec = _strip_comment(opener).strip()
        lang, *attrs = [s.strip() for s in spec.split(",")] if spec else [""]
        if lang not in ("", "json"):
            raise self.error(f"unsupported multiline string type {lang!r} (use ``` or ```json)")
        for attr in attrs:
            if attr not in ("escape", "novariable"):
                raise self.error(f"unknown multiline string attribute {attr!r}")
        content: list[str] = []
        for j in range(self.pos + 1, len(self.lines)):
            text = self.lines[j]
            idx = text.find("```")
            if idx < 0:
                content.append(text + "\n")
                continue
            content.append(text[:idx])
            if not _is_blank(text[idx + 3 :]):
                raise self.error(f"unexpected text after closing ```: {text[idx + 3:]!r}", j + 1)
            self.pos = j + 1
            src = "".join(content)
            if "novariable" in attrs:
                return _Tpl((src,), line), lang
            escapes = _BACKTICK_ESCAPES if "escape" in attrs else None
            return self.template(src, line, escapes), lang
        raise self.error("unterminated ``` multiline string", line)

    def json_body(self, first: str, line: int) -> _JsonBody:
        depth = 0
        in_str = esc = False
        collected: list[str] = []
        start_col = len(first) - len(first.lstrip())
        for j in range(self.pos, len(self.lines)):
            text = self.lines[j]
            k0 = start_col if j == self.pos else 0
            for k in range(k0, len(text)):
                ch = text[k]
                if in_str:
                    if esc:
                        esc = False
                    elif ch == "\\":
                        esc = True
                    elif ch == '"':
                        in_str = False
                    continue
                if ch == '"':
                    in_str = True
                elif ch in "{[":
                    depth += 1
                elif ch in "}]":
                    depth -= 1
                    if depth == 0:
                        collected.append(text[k0 : k + 1])
                        if not _is_blank(text[k + 1 :]):
                            raise self.error(
                                f"unexpected text after the JSON body: {text[k + 1:].strip()!r}",
                                j + 1,
                            )
                        self.pos = j + 1
                        return self.json_template("\n".join(collected), line)
            collected.append(text[k0:])
        raise self.error("unterminated JSON body", line)

    def json_template(self, src: str, line: int) -> _JsonBody:
        parts: list[str | tuple[_Var, bool]] = []
        buf: list[str] = []
        in_str = esc = False
        i = 0
        while i < len(src):
            ch = src[i]
            if src.startswith("{{", i):
                # `{{` never occurs in valid JSON outside a string: it is always a placeholder.
                end = src.find("}}", i + 2)
                name = src[i + 2 : end].strip() if end >= 0 else ""
                if not re.fullmatch(_NAME_RE, name):
                    near = src[i : i + 20]
                    raise self.error(f"invalid placeholder in JSON body near {near!r}", line)
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append((_Var(name), in_str))
                self.sink.append((name, line))
                i = end + 2
                continue
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            buf.append(ch)
            i += 1
        if buf:
            parts.append("".join(buf))
        probe = "".join(p if isinstance(p, str) else ("x" if p[1] else "0") for p in parts)
        try:
            json.loads(probe)
        except ValueError as exc:
            raise self.error(f"invalid JSON body: {exc}", line) from None
        return _JsonBody(parts, line)

    def bytes_literal(self, line: int) -> bytes:
        text = self.lines[self.pos].strip()
        kind = "base64" if text.startswith("base64,") else "hex"
        collected = text[len(kind) + 1 :]
        j = self.pos
        while ";" not in collected:
            j += 1
            if j >= len(self.lines):
                raise self.error(f"unterminated {kind}, literal (missing ';')", line)
            collected += self.lines[j]
        payload, _, rest = collected.partition(";")
        if not _is_blank(rest):
            raise self.error(f"unexpected text after {kind}, literal: {rest.strip()!r}", j + 1)
        self.pos = j + 1
        return _decode_bytes(kind, payload, line)

    # -- response

    def response(self, entry: _Entry) -> _Response:
        stripped = _strip_comment(self.lines[self.pos].strip())
        line = self.lineno
        m = _RESPONSE_LINE.fullmatch(stripped)
        if not m or not m.group(2):
            raise self.error(f"malformed response line {stripped!r}: expected 'HTTP <status>'")
        version = m.group(1)
        if version is not None and version not in ("/1.0", "/1.1", "/2", "/3"):
            hint = " (use 'HTTP' for any version)" if version == "/*" else ""
            raise self.error(f"unknown HTTP version 'HTTP{version}'{hint}")
        status_src = m.group(2).strip()
        if status_src == "*":
            status = None
        elif re.fullmatch(r"\d{3}", status_src):
            status = int(status_src)
        else:
            raise self.error(f"malformed status {status_src!r}: expected a 3-digit code or '*'")
        resp = _Response(line, f"HTTP{version}" if version else None, status)
        self.pos += 1
        section: str | None = None
        seen: set[str] = set()
        while True:
            self.skip_blank()
            if self.eof():
                return resp
            raw = self.lines[self.pos]
            stripped = raw.strip()
            line = self.lineno
            if self.is_method_line(_strip_comment(stripped)):
                return resp
            if self.is_response_line(stripped):
                raise self.error("a second 'HTTP' line in the same entry")
            name = self.section_name(stripped)
            if name is not None:
                if name in _REQUEST_SECTIONS:
                    raise self.error(f"section [{name}] must come before the 'HTTP' line")
                if name not in _RESPONSE_SECTIONS:
                    raise self.error(f"unknown section [{name}]")
                section = _RESPONSE_SECTIONS[name]
                if section in seen:
                    raise self.error(f"duplicate section [{name}]")
                seen.add(section)
                self.pos += 1
                continue
            if self.is_body_start(stripped):
                resp.body = self.body(json_content_type=False)
                self.expect_after_body(("request",))
                return resp
            if section is None:
                key, value = self.key_value(raw, line)
                resp.headers.append((key, self.template(value, line, _VALUE_ESCAPES), line))
            elif section == "captures":
                resp.captures.append(self.capture(raw, line, entry))
            else:
                resp.asserts.append(self.assertion(raw, line))
            self.pos += 1

    def capture(self, raw: str, line: int, entry: _Entry) -> _Capture:
        outer = self.sink
        refs: list[tuple[str, int]] = []
        self.sink = refs
        try:
            key, rest = self.key_value_raw(raw, line)
            if not re.fullmatch(_NAME_RE, key):
                raise self.error(f"invalid capture name {key!r}")
            cur = _Cursor(self, rest, line)
            query = cur.query()
            filters = cur.filters()
            if cur.peek_word() == "redact":
                cur.word()
            cur.expect_end("the capture")
        finally:
            self.sink = outer
        return _Capture(line, raw.strip(), key, query, filters, refs)

    def key_value_raw(self, raw: str, line: int) -> tuple[str, str]:
        m = re.match(r"\s*([^\s:]+)\s*:(.*)", raw)
        if not m:
            raise self.error(f"malformed capture {raw.strip()!r}: expected 'name: query'", line)
        return m.group(1), m.group(2)

    def assertion(self, raw: str, line: int) -> _Assert:
        cur = _Cursor(self, raw, line)
        query = cur.query()
        filters = cur.filters()
        if not cur.ws() and not cur.end():
            raise self.error(f"expected a space before {cur.rest()!r}")
        negate = False
        if cur.peek_word() == "not":
            cur.word()
            cur.need_ws("not")
            negate = True
        op = cur.operator()
        value = None
        if op in _VALUE_PREDICATES:
            cur.need_ws(op)
            value = cur.predicate_value(op)
        cur.expect_end("the predicate")
        source = (raw[: cur.comment_at] if cur.comment_at is not None else raw).strip()
        return _Assert(line, source, query, filters, negate, op, value)


class _Cursor:
    """A cursor over one assert/capture line."""

    def __init__(self, parser: _Parser, text: str, line: int) -> None:
        self.p = parser
        self.s = text.rstrip()
        self.i = len(self.s) - len(self.s.lstrip())
        self.line = line
        self.comment_at: int | None = None  # index of a trailing `# comment`, if any

    def err(self, message: str) -> _LineError:
        return _LineError(self.line, message)

    def rest(self) -> str:
        return self.s[self.i :]

    def ws(self) -> bool:
        j = self.i
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1
        return self.i > j

    def end(self) -> bool:
        save = self.i
        self.ws()
        at_end = self.i >= len(self.s) or self.s[self.i] == "#"
        if at_end and self.i < len(self.s):
            self.comment_at = self.i
        self.i = save if not at_end else self.i
        return at_end

    def expect_end(self, what: str) -> None:
        if not self.end():
            raise self.err(f"unexpected {self.rest().strip()!r} after {what}")

    def need_ws(self, after: str) -> None:
        if not self.ws() or self.i >= len(self.s):
            raise self.err(f"expected a value after {after!r}")

    def peek_word(self) -> str:
        save = self.i
        self.ws()
        m = _WORD.match(self.s, self.i)
        self.i = save
        return m.group() if m else ""

    def word(self) -> str:
        self.ws()
        m = _WORD.match(self.s, self.i)
        if not m:
            raise self.err(f"expected a keyword at {self.rest()!r}")
        self.i = m.end()
        return m.group()

    def quoted(self, what: str) -> _Tpl:
        if self.i >= len(self.s) or self.s[self.i] != '"':
            raise self.err(f"expected a \"quoted string\" after {what}")
        j = self.i + 1
        while j < len(self.s):
            if self.s[j] == "\\":
                j += 2
                continue
            if self.s[j] == '"':
                break
            j += 1
        else:
            raise self.err(f"unterminated string after {what}")
        tpl = self.p.template(self.s[self.i + 1 : j], self.line, _QUOTED_ESCAPES)
        self.i = j + 1
        return tpl

    def regex_literal(self) -> re.Pattern[str]:
        j = self.i + 1
        buf: list[str] = []
        while j < len(self.s):
            c = self.s[j]
            if c == "\\" and j + 1 < len(self.s):
                if self.s[j + 1] == "/":
                    buf.append("/")
                else:
                    buf.append(self.s[j : j + 2])
                j += 2
                continue
            if c == "/":
                break
            buf.append(c)
            j += 1
        else:
            raise self.err("unterminated /regex/")
        self.i = j + 1
        return _compile_regex("".join(buf), self.line)

    def regex_arg(self, what: str) -> re.Pattern[str] | _Tpl:
        if self.i < len(self.s) and self.s[self.i] == "/":
            return self.regex_literal()
        tpl = self.quoted(what)
        if tpl.is_literal:
            return _compile_regex(tpl.literal, self.line)
        return tpl

    def backtick(self) -> _Tpl:
        j = self.i + 1
        while j < len(self.s):
            if self.s[j] == "\\":
                j += 2
                continue
            if self.s[j] == "`":
                break
            j += 1
        else:
            raise self.err("unterminated `string`")
        tpl = self.p.template(self.s[self.i + 1 : j], self.line, _BACKTICK_ESCAPES)
        self.i = j + 1
        return tpl

    # -- grammar

    def query(self) -> _Query:
        self.ws()
        kind = self.word()
        if kind in _NOARG_QUERIES:
            return _Query(kind, self.line)
        if kind in _STRING_QUERIES:
            self.need_ws(kind)
            arg = self.quoted(kind)
            if kind == "jsonpath" and arg.is_literal:
                _compile_jsonpath_checked(arg.literal, self.line)
            return _Query(kind, self.line, arg)
        if kind == "regex":
            self.need_ws(kind)
            return _Query(kind, self.line, self.regex_arg(kind))
        if kind in _UNSUPPORTED_QUERIES:
            raise self.err(f"query {kind!r} is not supported by this runner")
        raise self.err(f"unknown query {kind!r}")

    def filters(self) -> list[_Filter]:
        filters: list[_Filter] = []
        while True:
            save = self.i
            if not self.ws():
                return filters
            m = _WORD.match(self.s, self.i)
            name = m.group() if m else ""
            if name in _NOARG_FILTERS:
                self.i = m.end()  # type: ignore[union-attr]
                filters.append(_Filter(name, self.line))
                continue
            if name in ("nth", "split", "replace", "replaceRegex", "regex", "jsonpath",
                        "decode", "urlQueryParam"):
                self.i = m.end()  # type: ignore[union-attr]
                filters.append(self.filter_args(name))
                continue
            if name in _UNSUPPORTED_FILTERS:
                raise self.err(f"filter {name!r} is not supported by this runner")
            if name == "length":
                raise self.err("unknown filter 'length' (Hurl has no length filter; use count)")
            if name in ("not", "exists", "redact") or name in _VALUE_PREDICATES \
                    or name in _NOARG_PREDICATES or not name:
                self.i = save
                return filters
            if name in _LEGACY_PREDICATES:
                raise self.err(
                    f"unknown predicate {name!r} (use {_LEGACY_PREDICATES[name]!r})"
                )
            raise self.err(f"unknown filter or predicate {name!r}")

    def filter_args(self, name: str) -> _Filter:
        self.need_ws(name)
        if name == "nth":
            m = re.compile(r"-?\d+").match(self.s, self.i)
            if m:
                self.i = m.end()
                return _Filter(name, self.line, (int(m.group()),))
            if self.s.startswith("{{", self.i):
                return _Filter(name, self.line, (self.placeholder(),))
            raise self.err("expected an integer after 'nth'")
        if name in ("regex", "replaceRegex"):
            pattern = self.regex_arg(name)
            if name == "regex":
                return _Filter(name, self.line, (pattern,))
            self.need_ws(name)
            return _Filter(name, self.line, (pattern, self.quoted(name)))
        if name == "replace":
            if self.i < len(self.s) and self.s[self.i] == "/":
                raise self.err("'replace' takes a literal string; use replaceRegex for a regex")
            old = self.quoted(name)
            self.need_ws(name)
            return _Filter(name, self.line, (old, self.quoted(name)))
        arg = self.quoted(name)
        if name == "jsonpath" and arg.is_literal:
            _compile_jsonpath_checked(arg.literal, self.line)
        return _Filter(name, self.line, (arg,))

    def placeholder(self) -> _Var:
        end = self.s.find("}}", self.i)
        if end < 0:
            raise self.err("unterminated placeholder")
        tpl = self.p.template(self.s[self.i : end + 2], self.line, None)
        self.i = end + 2
        return tpl.parts[0]  # type: ignore[return-value]

    def operator(self) -> str:
        self.ws()
        for op in ("==", "!=", ">=", "<=", ">", "<"):
            if self.s.startswith(op, self.i):
                self.i += len(op)
                return op
        m = _WORD.match(self.s, self.i)
        if not m:
            raise self.err(f"expected a predicate at {self.rest()!r}")
        name = m.group()
        if name in _LEGACY_PREDICATES:
            raise self.err(f"unknown predicate {name!r} (use {_LEGACY_PREDICATES[name]!r})")
        if name not in _VALUE_PREDICATES and name not in _NOARG_PREDICATES:
            raise self.err(f"unknown predicate {name!r}")
        self.i = m.end()
        return name

    def predicate_value(self, op: str) -> _PValue:
        s, i = self.s, self.i
        if s.startswith('"', i):
            tpl = self.quoted(op)
            if op == "matches" and tpl.is_literal:
                return _PValue("regex", _compile_regex(tpl.literal, self.line))
            return _PValue("str", tpl)
        if s.startswith("/", i):
            if op != "matches":
                raise self.err(f"a /regex/ value is only allowed with 'matches', not {op!r}")
            return _PValue("regex", self.regex_literal())
        if op == "matches":
            raise self.err("'matches' expects a \"string\" or a /regex/")
        if s.startswith("```", i):
            tpl, _lang = self.p.multiline(s[i + 3 :], self.line)
            self.p.pos -= 1  # the caller advances past the closing fence
            self.i = len(s)
            return _PValue("str", tpl)
        if s.startswith("`", i):
            return _PValue("str", self.backtick())
        if s.startswith("{{", i):
            return _PValue("var", self.placeholder())
        for word, value in (("true", True), ("false", False), ("null", None)):
            if re.compile(rf"{word}(?![A-Za-z0-9_])").match(s, i):
                self.i += len(word)
                return _PValue("null" if value is None else "bool", value)
        m = _NUMBER.match(s, i)
        if m:
            self.i = m.end()
            text = m.group()
            is_float = m.group(1) or m.group(2)
            return _PValue("num", float(text) if is_float else int(text))
        for kind in ("base64", "hex"):
            if s.startswith(kind + ",", i):
                end = s.find(";", i)
                if end < 0:
                    raise self.err(f"unterminated {kind}, literal (missing ';')")
                self.i = end + 1
                return _PValue("bytes", _decode_bytes(kind, s[i + len(kind) + 1 : end], self.line))
        if s.startswith("file,", i):
            raise self.err("file,...; predicate values are not supported by this runner")
        raise self.err(f"invalid predicate value {self.rest().strip()!r}")


def _decode_bytes(kind: str, payload: str, line: int) -> bytes:
    compact = re.sub(r"\s+", "", payload)
    try:
        if kind == "hex":
            return bytes.fromhex(compact)
        return base64.b64decode(compact, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise _LineError(line, f"invalid {kind}, literal: {exc}") from None


def _compile_regex(pattern: str, line: int) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _LineError(line, f"invalid regex {pattern!r}: {exc}") from None


def _check_option(name: str, value: str, line: int) -> Any:
    if name == "retry":
        if not re.fullmatch(r"-?\d+", value) or int(value) < -1:
            raise _LineError(line, f"option retry expects an integer >= -1, got {value!r}")
        return int(value)
    if name in ("retry-interval", "delay"):
        m = _DURATION.fullmatch(value)
        if not m:
            raise _LineError(
                line, f"option {name} expects a duration like 500ms or 2s, got {value!r}"
            )
        factor = {None: 1, "ms": 1, "s": 1000, "m": 60_000}[m.group(2)]
        return int(m.group(1)) * factor
    if value not in ("true", "false"):
        raise _LineError(line, f"option {name} expects true or false, got {value!r}")
    return value == "true"


def _infer_value(value: str) -> Any:
    """Type a variable value like ``hurl --variable``."""
    if value == "true":
        return True
    if value == "false":
        return False
    if value == "null":
        return None
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+([eE][+-]?\d+)?|-?\d+[eE][+-]?\d+", value):
        return float(value)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _check_variables(parsed: ParsedFile, initial: set[str]) -> None:
    """Every ``{{name}}`` must be defined before use (by variables, options or captures)."""
    defined = set(initial) | BUILTINS
    problems: list[str] = []

    def check(refs: list[tuple[str, int]]) -> None:
        for name, line in refs:
            if name not in defined:
                problems.append(f"{parsed.filename}:{line}: undefined variable '{name}'")

    for entry in parsed.entries:
        defined.update(entry.option_defs)
        check(entry.request_refs)
        if entry.response:
            for capture in entry.response.captures:
                check(capture.refs)
                defined.add(capture.name)
        check(entry.response_refs)
    if problems:
        raise HurlError(problems)


# --------------------------------------------------------------------------- JSONPath


@lru_cache(maxsize=1024)
def _compile_jsonpath(expr: str) -> tuple[Any, bool]:
    if not expr.startswith("$"):
        raise ValueError("a JSONPath expression must start with '$'")
    compiled = _jsonpath_parse(_bracket_keys(expr))
    return compiled, _is_definite(compiled)


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _bracket_keys(expr: str) -> str:
    """Rewrite ``.key`` as ``['key']`` (outside quotes).

    jsonpath-ng reserves words such as ``where``, ``in`` or ``sorted`` in dot notation,
    while Hurl accepts them (``$.query.where``); the bracket form is read literally.
    """
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(expr[i : i + 2] if c == "\\" else c)
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            out.append(c)
        elif c == "." and (m := _KEY.match(expr, i + 1)):
            descendant = "." if i > 0 and expr[i - 1] == "." else ""  # keep `..` for `$..key`
            out.append(f"{descendant}['{m.group()}']")
            i = m.end()
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _compile_jsonpath_checked(expr: str, line: int) -> tuple[Any, bool]:
    try:
        return _compile_jsonpath(expr)
    except Exception as exc:  # jsonpath-ng raises several unrelated exception types
        raise _LineError(line, f"invalid JSONPath {expr!r}: {exc}") from None


def _is_definite(node: Any) -> bool:
    """Hurl returns a scalar only for paths made of object keys and single array indices."""
    if isinstance(node, (jp.Root, jp.This)):
        return True
    if isinstance(node, jp.Child):
        return _is_definite(node.left) and _is_definite(node.right)
    if isinstance(node, jp.Fields):
        return len(node.fields) == 1 and node.fields[0] != "*"
    if isinstance(node, jp.Index):
        return len(getattr(node, "indices", (None,))) == 1
    return False


def _jsonpath(data: Any, expr: str, line: int) -> Any:
    compiled, definite = _compile_jsonpath_checked(expr, line)
    try:
        values = [m.value for m in compiled.find(data)]
    except Exception as exc:
        raise _LineError(line, f"JSONPath {expr!r} failed: {exc}") from None
    if definite:
        return values[0] if values else MISSING
    return values


# --------------------------------------------------------------------------- values


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


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if type(a) is type(b) and isinstance(a, (str, bytes)):
        return a == b
    return False


_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _is_iso_date(v: str) -> bool:
    if not _ISO_DATE.fullmatch(v):
        return False
    try:
        dt.datetime.fromisoformat(v.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _is_ip(v: Any, version: int) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return ipaddress.ip_address(v).version == version
    except ValueError:
        return False


class _Mismatch(Exception):
    """A predicate applied to a value of a type it does not accept (error even with ``not``)."""


def _predicate(op: str, actual: Any, expected: Any) -> bool:
    """Evaluate ``actual <op> expected``; raise :class:`_Mismatch` on a type mismatch."""
    if actual is MISSING:
        return False
    if op == "==":
        return _equal(actual, expected)
    if op == "!=":
        return not _equal(actual, expected)
    if op in (">", ">=", "<", "<="):
        if not ((_is_num(actual) and _is_num(expected))
                or (isinstance(actual, str) and isinstance(expected, str))):
            raise _Mismatch(f"cannot compare {_type_name(actual)} with {_type_name(expected)}")
        return {">": actual > expected, ">=": actual >= expected,
                "<": actual < expected, "<=": actual <= expected}[op]
    if op in ("startsWith", "endsWith", "contains"):
        if op == "contains" and isinstance(actual, list):
            return any(_equal(item, expected) for item in actual)
        if (isinstance(actual, str) and isinstance(expected, str)) or (
            isinstance(actual, bytes) and isinstance(expected, bytes)
        ):
            if op == "startsWith":
                return actual.startswith(expected)
            if op == "endsWith":
                return actual.endswith(expected)
            return expected in actual
        raise _Mismatch(f"{op} needs a string or bytes (or a list for contains), "
                        f"got {_type_name(actual)} and {_type_name(expected)}")
    if op == "matches":
        if not isinstance(actual, str):
            raise _Mismatch(f"matches needs a string, got {_type_name(actual)}")
        return expected.search(actual) is not None
    if op == "includes":
        if not isinstance(actual, list):
            raise _Mismatch(f"includes needs a list, got {_type_name(actual)}")
        return any(_equal(item, expected) for item in actual)
    if op == "exists":
        return True
    if op == "isEmpty":
        if not isinstance(actual, (list, str, dict, bytes)):
            raise _Mismatch(f"isEmpty needs a collection or a string, got {_type_name(actual)}")
        return len(actual) == 0
    if op == "isIsoDate":
        if not isinstance(actual, str):
            raise _Mismatch(f"isIsoDate needs a string, got {_type_name(actual)}")
        return _is_iso_date(actual)
    checks = {
        "isString": lambda v: isinstance(v, str),
        "isInteger": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "isFloat": lambda v: isinstance(v, float),
        "isNumber": _is_num,
        "isBoolean": lambda v: isinstance(v, bool),
        "isCollection": lambda v: isinstance(v, (list, dict, bytes)),
        "isList": lambda v: isinstance(v, list),
        "isObject": lambda v: isinstance(v, dict),
        "isDate": lambda v: isinstance(v, dt.datetime),
        "isUuid": lambda v: isinstance(v, str) and bool(_UUID.fullmatch(v)),
        "isIpv4": lambda v: _is_ip(v, 4),
        "isIpv6": lambda v: _is_ip(v, 6),
    }
    return bool(checks[op](actual))


# --------------------------------------------------------------------------- runner


class _Runner:
    def __init__(
        self, parsed: ParsedFile, variables: dict[str, Any], base_dir: Path, client: httpx.Client
    ) -> None:
        self.parsed = parsed
        self.file = parsed.filename
        self.vars = variables
        self.base_dir = base_dir
        self.client = client

    def msg(self, line: int, text: str) -> str:
        return f"{self.file}:{line}: {text}"

    # -- templates

    def lookup(self, name: str, line: int) -> Any:
        if name == "newUuid":
            return str(uuid.uuid4())
        if name == "newDate":
            return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if name not in self.vars:
            raise _LineError(line, f"undefined variable '{name}'")
        return self.vars[name]

    def render(self, tpl: _Tpl) -> str:
        out = []
        for part in tpl.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(_render_value(self.lookup(part.name, tpl.line), tpl.line, part.name))
        return "".join(out)

    def render_json(self, body: _JsonBody) -> str:
        out = []
        for part in body.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            var, in_string = part
            text = _render_value(self.lookup(var.name, body.line), body.line, var.name)
            out.append(json.dumps(text, ensure_ascii=False)[1:-1] if in_string else text)
        text = "".join(out)
        try:
            json.loads(text)
        except ValueError as exc:
            raise _LineError(body.line, f"JSON body is invalid once rendered: {exc}") from None
        return text

    # -- file

    def run(self) -> HurlResult:
        result = HurlResult(self.file)
        for entry in self.parsed.entries:
            failures = self.run_entry(entry, result)
            if failures:
                result.failures.extend(failures)
                break
        return result

    def options(self, req: _Request) -> dict[str, Any]:
        opts: dict[str, Any] = {"retry": 0, "retry-interval": DEFAULT_RETRY_INTERVAL_MS,
                                "delay": 0, "location": False, "skip": False}
        for opt in req.options:
            value = opt.value
            if opt.name == "variable":
                self.vars[opt.var_name] = self.render(value) if isinstance(value, _Tpl) else value
                continue
            if isinstance(value, _Tpl):
                value = _check_option(opt.name, self.render(value), opt.line)
            opts[opt.name] = value
        return opts

    def run_entry(self, entry: _Entry, result: HurlResult) -> list[str]:
        req = entry.request
        record = EntryResult(req.line, req.method, "")
        result.entries.append(record)
        try:
            opts = self.options(req)
        except _LineError as exc:
            return [self.msg(exc.line, exc.message)]
        if opts["skip"]:
            record.skipped = True
            return []
        retry = opts["retry"]
        attempt = 0
        while True:
            attempt += 1
            record.attempts = attempt
            if opts["delay"]:
                time.sleep(opts["delay"] / 1000)
            failures = self.attempt(entry, record, opts["location"])
            if not failures:
                return []
            if retry != -1 and attempt > retry:
                if attempt > 1:
                    failures.append(
                        self.msg(req.line, f"entry still failing after {attempt} attempts")
                    )
                return failures
            time.sleep(opts["retry-interval"] / 1000)

    def attempt(self, entry: _Entry, record: EntryResult, follow: bool) -> list[str]:
        req = entry.request
        record.status = None
        record.captures = {}
        try:
            request = self.build_request(req)
        except _LineError as exc:
            return [self.msg(exc.line, exc.message)]
        record.url = str(request.url)
        start = time.perf_counter()
        try:
            response = self.client.send(request, follow_redirects=follow)
        except httpx.HTTPError as exc:
            return [self.msg(req.line, f"{req.method} {request.url} failed: "
                                       f"{type(exc).__name__}: {exc}")]
        record.duration_ms = int((time.perf_counter() - start) * 1000)
        record.status = response.status_code
        if entry.response is None:
            return []
        return self.check_response(entry.response, response, record)

    def build_request(self, req: _Request) -> httpx.Request:
        url = self.render(req.url)
        if not re.match(r"https?://", url):
            raise _LineError(req.line, f"URL must be absolute http(s)://..., got {url!r}")
        if req.query:
            pairs = [(self.render(k), self.render(v)) for k, v in req.query]
            query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
            url += ("&" if "?" in url else "?") + query
        headers = [(self.render(k), self.render(v)) for k, v in req.headers]
        has = {k.lower() for k, _ in headers}
        if req.basic_auth is not None:
            user, password = self.render(req.basic_auth[0]), self.render(req.basic_auth[1])
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        content: bytes | None = None
        content_type: str | None = None
        kinds = [k for k, present in (("[FormParams]", req.form),
                                      ("[MultipartFormData]", req.multipart),
                                      ("body", req.body)) if present]
        if len(kinds) > 1:
            raise _LineError(req.line, f"a request cannot have both {kinds[0]} and {kinds[1]}")
        if req.form:
            pairs = [(self.render(k), self.render(v)) for k, v in req.form]
            content = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote).encode()
            content_type = "application/x-www-form-urlencoded"
        elif req.multipart:
            content, content_type = self.multipart(req.multipart)
        elif req.body is not None:
            content, content_type = self.body_bytes(req.body)
        if content_type and "content-type" not in has:
            headers.append(("Content-Type", content_type))
        try:
            return self.client.build_request(req.method, url, headers=headers, content=content)
        except (httpx.HTTPError, ValueError, UnicodeError) as exc:
            raise _LineError(req.line, f"invalid request: {exc}") from None

    def body_bytes(self, body: _Body) -> tuple[bytes, str | None]:
        if body.kind == "json":
            assert body.json is not None
            return self.render_json(body.json).encode(), body.content_type
        if body.kind == "text":
            assert body.text is not None
            return self.render(body.text).encode(), body.content_type
        return body.data, body.content_type

    def multipart(self, params: list[_Multipart]) -> tuple[bytes, str]:
        boundary = "hurl-" + uuid.uuid4().hex
        chunks: list[bytes] = []

        def quote(s: str) -> str:
            for old, new in (('"', "%22"), ("\r", "%0D"), ("\n", "%0A")):
                s = s.replace(old, new)
            return s

        for param in params:
            name = quote(self.render(param.name))
            chunks.append(f"--{boundary}\r\n".encode())
            if param.file is None:
                assert param.value is not None
                chunks.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
                chunks.append(self.render(param.value).encode())
            else:
                rel = self.render(param.file)
                path = (self.base_dir / rel).resolve()
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise _LineError(param.line, f"cannot read file {rel!r}: {exc}") from None
                ctype = param.content_type or mimetypes.guess_type(path.name)[0] \
                    or "application/octet-stream"
                chunks.append(
                    f'Content-Disposition: form-data; name="{name}"; '
                    f'filename="{quote(Path(rel).name)}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
                )
                chunks.append(data)
            chunks.append(b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return b"".join(chunks), f"multipart/form-data; boundary={boundary}"

    # -- response

    def check_response(
        self, spec: _Response, response: httpx.Response, record: EntryResult
    ) -> list[str]:
        if spec.version is not None and response.http_version != spec.version:
            actual_version = response.http_version
            return [self.msg(spec.line, f"expected {spec.version}, got {actual_version}")]
        if spec.status is not None and response.status_code != spec.status:
            excerpt = response.content[:BODY_EXCERPT].decode("utf-8", errors="replace")
            return [self.msg(
                spec.line,
                f"expected status {spec.status}, got {response.status_code} "
                f"({response.request.method} {response.request.url}); body: {excerpt}",
            )]
        ctx = _ResponseContext(response, record.duration_ms)
        for capture in spec.captures:
            try:
                value = self.evaluate(capture.query, capture.filters, ctx)
            except _LineError as exc:
                return [self.msg(exc.line, f"capture {capture.source} failed: {exc.message}")]
            if value is MISSING:
                return [self.msg(capture.line, f"capture {capture.source} failed: no value")]
            self.vars[capture.name] = value
            record.captures[capture.name] = value
        failures: list[str] = []
        for name_tpl, value_tpl, line in spec.headers:
            try:
                name, expected = self.render(name_tpl), self.render(value_tpl)
            except _LineError as exc:
                failures.append(self.msg(exc.line, exc.message))
                continue
            actual = response.headers.get_list(name)
            if not actual:
                failures.append(
                    self.msg(line, f"header '{name}: {expected}' failed: header not found")
                )
            elif expected not in actual:
                shown = _show(actual[0] if len(actual) == 1 else actual)
                failures.append(
                    self.msg(line, f"header '{name}: {expected}' failed: actual {shown}")
                )
        if spec.body is not None:
            failure = self.check_body(spec.body, ctx)
            if failure:
                failures.append(failure)
        for assertion in spec.asserts:
            failure = self.check_assert(assertion, ctx)
            if failure:
                failures.append(failure)
        return failures

    def check_body(self, body: _Body, ctx: _ResponseContext) -> str | None:
        try:
            if body.kind == "bytes":
                expected: Any = body.data
                actual: Any = ctx.response.content
            else:
                expected = self.render_json(body.json) if body.json else self.render(body.text)  # type: ignore[arg-type]
                actual = ctx.text(body.line)
        except _LineError as exc:
            return self.msg(exc.line, exc.message)
        if expected != actual:
            return self.msg(
                body.line, f"body failed: expected {_show(expected)}, actual {_show(actual)}"
            )
        return None

    def check_assert(self, a: _Assert, ctx: _ResponseContext) -> str | None:
        head = f"assert {a.source} failed"
        try:
            actual = self.evaluate(a.query, a.filters, ctx)
            expected = self.predicate_value(a)
            try:
                ok = _predicate(a.op, actual, expected)
            except _Mismatch as exc:
                return self.msg(a.line, f"{head}: actual {_show(actual)}; type mismatch: {exc}")
        except _LineError as exc:
            return self.msg(exc.line, f"{head}: {exc.message}")
        if ok != a.negate:
            return None
        return self.msg(a.line, f"{head}: actual {_show(actual)}")

    def predicate_value(self, a: _Assert) -> Any:
        pv = a.value
        if pv is None:
            return None
        if pv.kind == "str":
            text = self.render(pv.value)
            return _compile_regex(text, a.line) if a.op == "matches" else text
        if pv.kind == "var":
            value = self.lookup(pv.value.name, a.line)
            if a.op == "matches":
                if not isinstance(value, str):
                    raise _LineError(a.line, f"matches needs a string regex, '{pv.value.name}' "
                                             f"is a {_type_name(value)}")
                return _compile_regex(value, a.line)
            return value
        return pv.value

    # -- queries and filters

    def evaluate(self, query: _Query, filters: list[_Filter], ctx: _ResponseContext) -> Any:
        value = self.query(query, ctx)
        for f in filters:
            if value is MISSING:
                raise _LineError(
                    f.line, f"filter '{f.name}' has no input (the query returned no value)"
                )
            value = self.apply_filter(f, value)
        return value

    def query(self, q: _Query, ctx: _ResponseContext) -> Any:
        r = ctx.response
        if q.kind == "status":
            return r.status_code
        if q.kind == "version":
            return r.http_version.removeprefix("HTTP/")
        if q.kind == "url":
            return str(r.url)
        if q.kind == "duration":
            return ctx.duration_ms
        if q.kind == "body":
            return ctx.text(q.line)
        if q.kind == "bytes":
            return r.content
        if q.kind == "sha256":
            return hashlib.sha256(r.content).digest()
        if q.kind == "md5":
            return hashlib.md5(r.content).digest()  # Hurl's md5 query
        if q.kind == "header":
            values = r.headers.get_list(self.render(q.arg))
            if not values:
                return MISSING
            return values[0] if len(values) == 1 else values
        if q.kind == "variable":
            return self.vars.get(self.render(q.arg), MISSING)
        if q.kind == "jsonpath":
            return _jsonpath(ctx.json(q.line), self.render(q.arg), q.line)
        if q.kind == "regex":
            return self.regex_group(self.pattern(q.arg, q.line), ctx.text(q.line))
        raise _LineError(q.line, f"unknown query {q.kind!r}")  # pragma: no cover

    def pattern(self, arg: Any, line: int) -> re.Pattern[str]:
        return arg if isinstance(arg, re.Pattern) else _compile_regex(self.render(arg), line)

    @staticmethod
    def regex_group(pattern: re.Pattern[str], text: str) -> Any:
        m = pattern.search(text)
        if m is None or m.re.groups < 1 or m.group(1) is None:
            return MISSING
        return m.group(1)

    def apply_filter(self, f: _Filter, v: Any) -> Any:
        name, line = f.name, f.line

        def bad(expected: str) -> _LineError:
            got = f"{_type_name(v)} {_show(v, 80)}"
            return _LineError(line, f"filter '{name}' expects {expected}, got {got}")

        if name == "count":
            if isinstance(v, (list, bytes)):
                return len(v)
            raise bad("a list or bytes")
        if name in ("first", "last", "nth"):
            if not isinstance(v, list):
                raise bad("a list")
            if name == "nth":
                n = f.args[0]
                if isinstance(n, _Var):
                    n = self.lookup(n.name, line)
                    if not isinstance(n, int) or isinstance(n, bool):
                        raise _LineError(line, f"nth expects an integer, got {_show(n)}")
            else:
                n = 0 if name == "first" else -1
            if not -len(v) <= n < len(v):
                raise _LineError(line, f"filter '{name}': index {n} out of bounds (size {len(v)})")
            return v[n]
        if name == "toInt":
            if isinstance(v, bool):
                raise bad("a number or a string")
            if isinstance(v, int):
                return v
            if isinstance(v, float):
                return int(v)
            if isinstance(v, str) and re.fullmatch(r"[+-]?\d+", v):
                return int(v)
            raise bad("a number or an integer string")
        if name == "toFloat":
            if _is_num(v):
                return float(v)
            if isinstance(v, str):
                try:
                    return float(v)
                except ValueError:
                    pass
            raise bad("a number or a numeric string")
        if name == "toString":
            if isinstance(v, (list, dict, bytes)):
                raise bad("a scalar")
            return _render_value(v, line, "value")
        if name == "toHex":
            if isinstance(v, bytes):
                return v.hex()
            raise bad("bytes")
        if name in ("utf8Decode", "decode"):
            if not isinstance(v, bytes):
                raise bad("bytes")
            encoding = "utf-8" if name == "utf8Decode" else self.render(f.args[0])
            try:
                return v.decode(encoding)
            except (LookupError, UnicodeDecodeError) as exc:
                raise _LineError(line, f"filter '{name}': {exc}") from None
        if name in ("base64Decode", "base64UrlSafeDecode"):
            if not isinstance(v, str):
                raise bad("a string")
            try:
                padded = v + "=" * (-len(v) % 4)
                if name == "base64Decode":
                    return base64.b64decode(padded, validate=True)
                return base64.urlsafe_b64decode(padded)
            except (ValueError, binascii.Error) as exc:
                raise _LineError(line, f"filter '{name}': {exc}") from None
        if name in ("base64Encode", "base64UrlSafeEncode", "utf8Encode"):
            if name == "utf8Encode":
                if not isinstance(v, str):
                    raise bad("a string")
                return v.encode()
            if not isinstance(v, bytes):
                raise bad("bytes")
            if name == "base64Encode":
                return base64.b64encode(v).decode()
            return base64.urlsafe_b64encode(v).decode().rstrip("=")
        if not isinstance(v, str):
            raise bad("a string")
        if name == "split":
            return v.split(self.render(f.args[0]))
        if name == "replace":
            return v.replace(self.render(f.args[0]), self.render(f.args[1]))
        if name == "replaceRegex":
            replacement = self.render(f.args[1])
            return self.pattern(f.args[0], line).sub(lambda _m: replacement, v)
        if name == "regex":
            return self.regex_group(self.pattern(f.args[0], line), v)
        if name == "jsonpath":
            try:
                data = json.loads(v)
            except ValueError:
                raise _LineError(line, "filter 'jsonpath': value is not valid JSON") from None
            return _jsonpath(data, self.render(f.args[0]), line)
        if name == "urlDecode":
            return urllib.parse.unquote(v)
        if name == "urlEncode":
            return urllib.parse.quote(v, safe="-_.~")
        if name == "urlQueryParam":
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(v).query, keep_blank_values=True)
            values = params.get(self.render(f.args[0]))
            return values[0] if values else MISSING
        if name == "htmlEscape":
            return html.escape(v)
        if name == "htmlUnescape":
            return html.unescape(v)
        raise _LineError(line, f"unknown filter {name!r}")  # pragma: no cover


class _ResponseContext:
    """A response plus lazily decoded text/JSON (decoded once per attempt)."""

    def __init__(self, response: httpx.Response, duration_ms: int) -> None:
        self.response = response
        self.duration_ms = duration_ms
        self._text: str | None = None
        self._json: Any = MISSING

    def text(self, line: int) -> str:
        if self._text is None:
            charset = self.response.charset_encoding or "utf-8"
            try:
                self._text = self.response.content.decode(charset)
            except (LookupError, UnicodeDecodeError) as exc:
                raise _LineError(
                    line, f"response body cannot be decoded as {charset}: {exc}"
                ) from None
        return self._text

    def json(self, line: int) -> Any:
        if self._json is MISSING:
            try:
                self._json = json.loads(self.text(line))
            except ValueError:
                excerpt = self.text(line)[:200]
                raise _LineError(line, f"response body is not valid JSON: {excerpt!r}") from None
        return self._json
