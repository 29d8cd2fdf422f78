"""JSONPath compilation and evaluation with Hurl's definite/indefinite semantics."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jsonpath_ng import jsonpath as jp
from jsonpath_ng.ext import parse as _jsonpath_parse

from .errors import _LineError
from .model import MISSING


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
