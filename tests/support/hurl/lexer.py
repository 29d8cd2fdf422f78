"""Line-level lexing: comments, escapes, ``{{name}}`` templates and literal bodies."""

from __future__ import annotations

import base64
import binascii
import json
import re

from .errors import _LineError
from .model import _NAME_RE, _JsonBody, _Tpl, _Var

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


class _Lexer:
    """Line-level reading shared by the parser: templates, key/values, multiline bodies."""

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

    # -- multi-line literals

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
