"""Parsing of one assert/capture line: queries, filters, predicates and values."""

from __future__ import annotations

import re

from .errors import _LineError
from .jsonpath import _compile_jsonpath_checked
from .lexer import (
    _BACKTICK_ESCAPES,
    _NUMBER,
    _QUOTED_ESCAPES,
    _WORD,
    _compile_regex,
    _decode_bytes,
    _Lexer,
)
from .model import _Filter, _PValue, _Query, _Tpl, _Var

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


class _Cursor:
    """A cursor over one assert/capture line."""

    def __init__(self, parser: _Lexer, text: str, line: int) -> None:
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
