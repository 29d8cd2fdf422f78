"""Query and filter evaluation against a response."""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import urllib.parse
from typing import Any

import httpx

from .errors import _LineError
from .jsonpath import _jsonpath
from .lexer import _compile_regex
from .model import MISSING, _Filter, _Query, _Var
from .templates import _Templates
from .values import _is_num, _render_value, _show, _type_name


class _Evaluator(_Templates):
    """Queries and filters evaluated against a response (mixed into the runner)."""

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
