"""References inside workflow step fields, compiled once at load.

Forms: `${request:path}`, `${request:path:default}`, `${step:name:path}`,
`${step:name:path:default}` (and `${step:name}` for a step's whole output).
Paths are dotted, with numeric parts indexing lists: `documents.0.content`.
`$${` writes a literal `${`.

A field that is exactly one reference yields the referenced value itself (a
list stays a list); a reference inside text inserts strings as-is and
everything else as JSON. A missing value without a default resolves to None
and a warning is recorded in the scope (the step trace shows it). A default
that parses as JSON (`5`, `true`) yields that value when it is the whole field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from engine.prompts import stringify

_REF = re.compile(r"\$\$\{|\$\{(request|step):([^}]*)\}")
_PATH = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_STEP = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MISSING = object()


class ReferenceError_(ValueError):
    """A malformed `${...}` reference."""


@dataclass(slots=True)
class Scope:
    """What references resolve against during a run."""

    request: dict[str, Any]
    outputs: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    resolved: dict[str, Any] | None = None  # when a dict: reference text -> its value


@dataclass(frozen=True, slots=True)
class Reference:
    source: str  # "request" | "step"
    step: str | None
    path: tuple[tuple[str, int | None], ...]
    default: str | None
    text: str

    def lookup(self, scope: Scope) -> Any:
        if self.source == "request":
            value: Any = scope.request
        else:
            value = scope.outputs.get(self.step, _MISSING)  # type: ignore[arg-type]
            if value is _MISSING:
                return _MISSING
        for key, index in self.path:
            if isinstance(value, dict):
                value = value.get(key, _MISSING)
            elif isinstance(value, list | tuple) and index is not None:
                value = value[index] if -len(value) <= index < len(value) else _MISSING
            else:
                return _MISSING
            if value is _MISSING:
                return _MISSING
        return value

    def resolve(self, scope: Scope, *, whole: bool = True) -> Any:
        value = self.lookup(scope)
        if value is _MISSING:
            if self.default is not None:
                value = _parse_default(self.default) if whole else self.default
            else:
                scope.warnings.append(f"{self.text} resolved to null (no such value)")
                value = None
        if scope.resolved is not None:
            scope.resolved[self.text] = value
        return value


def _parse_default(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_reference(source: str, body: str) -> Reference:
    text = f"${{{source}:{body}}}"
    if source == "request":
        path, sep, default = body.partition(":")
        step = None
    else:
        step, _, rest = body.partition(":")
        if not _STEP.match(step):
            raise ReferenceError_(f"invalid step name in {text}")
        path, sep, default = rest.partition(":")
    if path and not _PATH.match(path):
        raise ReferenceError_(f"invalid path '{path}' in {text}: use dotted names and indexes")
    if not path and source == "request" and not sep:
        pass  # `${request:}` is the whole request
    parts = tuple((p, int(p) if p.lstrip("-").isdigit() else None)
                  for p in path.split(".")) if path else ()
    return Reference(source, step, parts, default if sep else None, text)


# Compiled values: each has `render(scope)` and `constant` (True when no reference).

class Const:
    __slots__ = ("value",)
    constant = True

    def __init__(self, value: Any):
        self.value = value

    def render(self, scope: Scope) -> Any:
        return self.value


class Whole:
    __slots__ = ("ref",)
    constant = False

    def __init__(self, ref: Reference):
        self.ref = ref

    def render(self, scope: Scope) -> Any:
        return self.ref.resolve(scope)


class Text:
    __slots__ = ("parts",)
    constant = False

    def __init__(self, parts: list[str | Reference]):
        self.parts = parts

    def render(self, scope: Scope) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part.resolve(scope, whole=False)
                out.append("" if value is None else stringify(value))
        return "".join(out)


class DictValue:
    __slots__ = ("items",)
    constant = False

    def __init__(self, items: list[tuple[str, Any]]):
        self.items = items

    def render(self, scope: Scope) -> dict[str, Any]:
        return {k: v.render(scope) for k, v in self.items}


class ListValue:
    __slots__ = ("items",)
    constant = False

    def __init__(self, items: list[Any]):
        self.items = items

    def render(self, scope: Scope) -> list[Any]:
        return [v.render(scope) for v in self.items]


Compiled = Const | Whole | Text | DictValue | ListValue


def _split(text: str) -> list[str | Reference]:
    parts: list[str | Reference] = []
    position = 0
    literal: list[str] = []
    for match in _REF.finditer(text):
        literal.append(text[position:match.start()])
        position = match.end()
        if match.group(0) == "$${":
            literal.append("${")
            continue
        parts.append("".join(literal))
        literal = []
        parts.append(parse_reference(match.group(1), match.group(2)))
    literal.append(text[position:])
    parts.append("".join(literal))
    return [p for p in parts if p != ""]


def compile_value(value: Any) -> Compiled:
    """Compile a field (string, list, dict or scalar) once; raises ReferenceError_."""
    if isinstance(value, str):
        if "${" not in value:
            return Const(value)
        parts = _split(value)
        if not any(isinstance(p, Reference) for p in parts):
            return Const("".join(parts))  # type: ignore[arg-type]
        if len(parts) == 1:
            return Whole(parts[0])  # type: ignore[arg-type]
        return Text(parts)
    if isinstance(value, dict):
        items = [(k, compile_value(v)) for k, v in value.items()]
        if all(v.constant for _, v in items):
            return Const(value)
        return DictValue(items)
    if isinstance(value, list):
        compiled = [compile_value(v) for v in value]
        if all(v.constant for v in compiled):
            return Const(value)
        return ListValue(compiled)
    return Const(value)


def references_in(value: Any) -> list[Reference]:
    """Every well-formed reference in a raw value (malformed ones are skipped)."""
    found: list[Reference] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${" in item:
                for match in _REF.finditer(item):
                    if match.group(0) == "$${":
                        continue
                    try:
                        found.append(parse_reference(match.group(1), match.group(2)))
                    except ReferenceError_:
                        continue
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def reference_errors(value: Any, path: str) -> list[tuple[str, str]]:
    """(path, message) for every malformed reference in a raw value."""
    errors: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and "${" in item:
            for match in _REF.finditer(item):
                if match.group(0) != "$${":
                    try:
                        parse_reference(match.group(1), match.group(2))
                    except ReferenceError_ as error:
                        errors.append((where, str(error)))
            unknown = re.findall(r"(?<!\$)\$\{(?!request:|step:)([^}:]*)", item)
            for kind in unknown:
                errors.append((where, f"unknown reference kind '${{{kind}...}}': "
                                      "use ${request:...} or ${step:...}"))
        elif isinstance(item, dict):
            stack.extend((v, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
    return errors


_STRUCTURAL = frozenset({"name", "type", "depends_on", "on_error", "retry", "timeout_ms",
                         "fallback_value",
                         "description"})


def step_references(step: dict[str, Any]) -> set[str]:
    """Names of the steps a raw step dict references (for the DAG and validation)."""
    names = set()
    for key, value in step.items():
        if key in _STRUCTURAL:
            continue
        if key == "conditions" and isinstance(value, list):
            # Only the tested fields and values are read before the step decides;
            # end_workflow outputs may name any step.
            for condition in value:
                if isinstance(condition, dict):
                    for ref in references_in([condition.get("field"), condition.get("value")]):
                        if ref.step:
                            names.add(ref.step)
            continue
        if key == "default_action":
            continue
        for ref in references_in(value):
            if ref.step:
                names.add(ref.step)
    return names
