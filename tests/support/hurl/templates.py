"""Variables: typing ``--variable`` values, definition checks, ``{{name}}`` rendering."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from .errors import HurlError, _LineError
from .model import ParsedFile, _JsonBody, _Tpl
from .values import _render_value

BUILTINS = frozenset({"newUuid", "newDate"})


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


class _Templates:
    """Variable lookup and template rendering over ``self.vars`` (mixed into the runner)."""

    vars: dict[str, Any]

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
