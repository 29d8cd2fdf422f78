"""Prompt templates.

Two formats:
- `template`: `${var:name}` and `${var:name:default}` (names: letters, digits,
  hyphens, underscores; the default runs to the closing brace). `$${` writes a
  literal `${`. A variable without a value or default is a 400 naming it.
- `jinja2`: a sandboxed Jinja2 template. The sandbox blocks Python internals
  (attributes starting with `_`, unsafe callables) and refuses operations that
  would exhaust memory (huge string or list repetition, huge powers).

Templates compile once and are cached by content.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import InvalidRequest

_PLACEHOLDER = re.compile(r"\$\$\{|\$\{var:([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_RENDERED_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str | None

    @property
    def required(self) -> bool:
        return self.default is None


def stringify(value: Any) -> str:
    """How a variable's value appears in text: strings as-is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class _Substitution:
    """A `${var:...}` template split once into literal text and variables."""

    def __init__(self, content: str):
        self.parts: list[str | Variable] = []
        position = 0
        for match in _PLACEHOLDER.finditer(content):
            self.parts.append(content[position : match.start()])
            position = match.end()
            if match.group(0) == "$${":
                self.parts.append("${")
                continue
            name, sep, default = match.group(1).partition(":")
            if not _NAME.match(name):
                raise InvalidRequest(
                    f"invalid variable name '{name}' in ${{var:{match.group(1)}}}: use letters, "
                    "digits, hyphens and underscores",
                    param="content",
                )
            self.parts.append(Variable(name, default if sep else None))
        self.parts.append(content[position:])
        self.variables = _unique([p for p in self.parts if isinstance(p, Variable)])

    def render(self, values: dict[str, Any]) -> str:
        missing = [v.name for v in self.variables if v.required and v.name not in values]
        if missing:
            raise InvalidRequest(
                f"missing value for variable{'s' if len(missing) > 1 else ''} "
                + ", ".join(f"'{m}'" for m in missing),
                param=f"variables.{missing[0]}",
                code="missing_variable",
            )
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part.name in values:
                out.append(stringify(values[part.name]))
            else:
                out.append(part.default or "")
        return "".join(out)


def _unique(variables: list[Variable]) -> list[Variable]:
    seen: dict[str, Variable] = {}
    for v in variables:
        # A later occurrence with a default does not make an earlier required one optional.
        if v.name not in seen or (seen[v.name].default is not None and v.default is None):
            seen[v.name] = v
    return list(seen.values())


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if op == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int):
                    if len(seq) * count > MAX_RENDERED_CHARS:
                        raise SecurityError("repetition too large")
        return {"*": operator.mul, "**": operator.pow}[op](left, right)


_JINJA = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class _Jinja:
    def __init__(self, content: str):
        try:
            self.template = _JINJA.from_string(content)
            names = sorted(meta.find_undeclared_variables(_JINJA.parse(content)))
        except TemplateError as error:
            raise InvalidRequest(f"invalid Jinja2 template: {error}", param="content") from None
        self.variables = [Variable(n, None) for n in names]

    def render(self, values: dict[str, Any]) -> str:
        try:
            text = self.template.render(values)
        except UndefinedError as error:
            raise InvalidRequest(
                f"missing value for a template variable: {error.message}",
                code="missing_variable",
            ) from None
        except SecurityError as error:
            raise InvalidRequest(f"template refused by the sandbox: {error}") from None
        except Exception as error:  # any runtime error in user template code is the user's
            raise InvalidRequest(
                f"template failed to render: {type(error).__name__}: {error}"
            ) from None
        if len(text) > MAX_RENDERED_CHARS:
            raise InvalidRequest(f"rendered prompt exceeds {MAX_RENDERED_CHARS} characters")
        return text


Compiled = _Substitution | _Jinja


@lru_cache(maxsize=1024)
def compile_prompt(content: str, fmt: Literal["template", "jinja2"] = "template") -> Compiled:
    return _Jinja(content) if fmt == "jinja2" else _Substitution(content)


def render(content: str, values: dict[str, Any], fmt: Literal["template", "jinja2"] = "template"):
    """Render `content` with `values`; returns the text."""
    return compile_prompt(content, fmt).render(values)


def variables_of(content: str, fmt: Literal["template", "jinja2"] = "template") -> list[Variable]:
    return compile_prompt(content, fmt).variables
