"""The strict Hurl file parser: entries, sections, options and bodies."""

from __future__ import annotations

import re
from typing import Any

from .cursor import _VALUE_PREDICATES, _Cursor
from .errors import HurlError, _LineError
from .lexer import (
    _METHOD_LINE,
    _NUMBER,
    _QUOTED_ESCAPES,
    _RESPONSE_LINE,
    _VALUE_ESCAPES,
    _Lexer,
    _strip_comment,
)
from .model import (
    _NAME_RE,
    ParsedFile,
    _Assert,
    _Body,
    _Capture,
    _Entry,
    _Multipart,
    _Option,
    _Request,
    _Response,
    _Tpl,
)
from .templates import _infer_value

METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


_DURATION = re.compile(r"(\d+)(ms|s|m)?")

_REQUEST_SECTIONS = {
    "QueryStringParams": "query", "Query": "query",
    "FormParams": "form", "Form": "form",
    "MultipartFormData": "multipart", "Multipart": "multipart",
    "BasicAuth": "basicauth", "Options": "options", "Cookies": "cookies",
}
_RESPONSE_SECTIONS = {"Captures": "captures", "Asserts": "asserts"}


_BOOL_OPTIONS = {"location", "skip", "verbose", "very-verbose"}
_OPTIONS = {"retry", "retry-interval", "delay", "variable", *_BOOL_OPTIONS}


def parse_text(text: str, filename: str = "<text>") -> ParsedFile:
    """Parse Hurl source strictly; raise :class:`HurlError` naming the line on any problem."""
    try:
        return ParsedFile(filename, _Parser(text).parse())
    except _LineError as exc:
        raise HurlError(f"{filename}:{exc.line}: {exc.message}") from None


class _Parser(_Lexer):
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
