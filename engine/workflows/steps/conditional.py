"""`conditional` step: the first matching condition's action, else the default.

Output: {"matched": index or None, "action": "continue" | "go_to_step" |
"end_workflow", "target": step name (go_to_step), "max_iterations",
"output": the rendered end_workflow output}. Input (recorded): {"conditions":
[{"index", "field" (the reference), "field_value" (what it resolved to),
"operator", "value" (resolved), "matched"}]}: the conditions evaluated, in
order, up to the first that matched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.workflows.references import compile_value
from engine.workflows.schema import ConditionalStep, EndWorkflow, GoToStep
from engine.workflows.steps.base import StepContext, StepRunner


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _ordered(left: Any, right: Any, compare: Callable[[Any, Any], bool]) -> bool:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return compare(a, b)
    if isinstance(left, str) and isinstance(right, str):
        return compare(left, right)
    return False


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict | tuple):
        return not value
    return False


def _equal(left: Any, right: Any) -> bool:
    if left == right:
        return True
    a, b = _number(left), _number(right)
    return a is not None and b is not None and a == b


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, str):
        return right is not None and str(right) in left
    if isinstance(left, list | tuple):
        return right in left
    if isinstance(left, dict):
        return right in left
    return False


OPERATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda a, b: not _equal(a, b),
    "gt": lambda a, b: _ordered(a, b, lambda x, y: x > y),
    "gte": lambda a, b: _ordered(a, b, lambda x, y: x >= y),
    "lt": lambda a, b: _ordered(a, b, lambda x, y: x < y),
    "lte": lambda a, b: _ordered(a, b, lambda x, y: x <= y),
    "is_empty": lambda a, _: is_empty(a),
    "is_not_empty": lambda a, _: not is_empty(a),
    "contains": _contains,
    "starts_with": lambda a, b: isinstance(a, str) and b is not None and a.startswith(str(b)),
    "ends_with": lambda a, b: isinstance(a, str) and b is not None and a.endswith(str(b)),
}


def _compile_action(action: Any) -> Callable[[StepContext], dict[str, Any]]:
    if isinstance(action, GoToStep):
        decision = {"action": "go_to_step", "target": action.go_to_step,
                    "max_iterations": action.max_iterations}
        return lambda ctx: dict(decision)
    if isinstance(action, EndWorkflow):
        output = compile_value(action.end_workflow)
        return lambda ctx: {"action": "end_workflow", "output": output.render(ctx.scope)}
    return lambda ctx: {"action": "continue"}


def compile_step(step: ConditionalStep) -> StepRunner:
    compiled = [(c.field, c.operator, compile_value(c.field), OPERATIONS[c.operator],
                 compile_value(c.value), _compile_action(c.action)) for c in step.conditions]
    default = _compile_action(step.default_action)

    async def run(ctx: StepContext) -> dict[str, Any]:
        scope = ctx.scope
        evaluated: list[dict[str, Any]] = []
        ctx.input = {"conditions": evaluated}
        for index, (text, operator, field, operation, value, action) in enumerate(compiled):
            left, right = field.render(scope), value.render(scope)
            matched = operation(left, right)
            evaluated.append({"index": index, "field": text, "field_value": left,
                              "operator": operator, "value": right, "matched": matched})
            if matched:
                return {"matched": index, **action(ctx)}
        return {"matched": None, **default(ctx)}

    return run
