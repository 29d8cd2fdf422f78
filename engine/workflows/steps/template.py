"""`template` step: a `${...}` value or a sandboxed Jinja2 text, as the step output.

Input (recorded): `references`: {"format": "references", "references": {each
`${...}` reference: the value it resolved to}}; `jinja2`: {"format": "jinja2",
"request", "steps" (the outputs of the steps the template names as
`steps.<name>`, or all of them when it uses `steps` otherwise), and "rendered"
(the text, when parsed as JSON)}.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.errors import InvalidRequest
from engine.prompts import compile_prompt
from engine.workflows.references import compile_value
from engine.workflows.schema import TemplateStep
from engine.workflows.steps.base import StepContext, StepRunner

_NAMED_STEP = re.compile(r"""\bsteps(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*['"]([^'"]+)['"]\s*\])""")
_ANY_STEPS = re.compile(r"\bsteps\b")


def steps_used(text: str) -> set[str] | None:
    """The step names a Jinja2 template reads as `steps.x` / `steps['x']`; None when it
    uses `steps` some other way (a loop, a variable index)."""
    named = {a or b for a, b in _NAMED_STEP.findall(text)}
    if len(_ANY_STEPS.findall(text)) > len(_NAMED_STEP.findall(text)):
        return None
    return named


def compile_step(step: TemplateStep) -> StepRunner:
    if step.format == "references":
        value = compile_value(step.template)

        async def run_references(ctx: StepContext) -> Any:
            resolved: dict[str, Any] = {}
            ctx.input = {"format": "references", "references": resolved}
            ctx.scope.resolved = resolved
            try:
                return value.render(ctx.scope)
            finally:
                ctx.scope.resolved = None

        return run_references

    template = compile_prompt(step.template, "jinja2")
    parse_json = step.parse_json
    used = steps_used(step.template)

    async def run_jinja(ctx: StepContext) -> Any:
        # Jinja sees `request` and `steps` (outputs by step name).
        outputs = ctx.scope.outputs
        ctx.input = {"format": "jinja2", "request": ctx.scope.request,
                     "steps": dict(outputs) if used is None
                     else {name: outputs[name] for name in sorted(used) if name in outputs}}
        text = template.render({"request": ctx.scope.request, "steps": outputs})
        if not parse_json:
            return text
        ctx.input["rendered"] = text
        try:
            return json.loads(text)
        except ValueError as error:
            raise InvalidRequest(f"template output is not JSON: {error}") from None

    return run_jinja
