"""Predicate evaluation (``==``, ``contains``, ``isUuid``...) with Hurl's typing."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Any

from .model import MISSING
from .values import _is_num, _type_name


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
