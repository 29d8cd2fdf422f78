"""`template` step: a `${...}` value or a sandboxed Jinja2 text, as the step output."""

from __future__ import annotations

import json
from typing import Any

from engine.errors import InvalidRequest
from engine.prompts import compile_prompt
from engine.workflows.references import compile_value
from engine.workflows.schema import TemplateStep
from engine.workflows.steps.base import StepContext, StepRunner


def compile_step(step: TemplateStep) -> StepRunner:
    if step.format == "references":
        value = compile_value(step.template)

        async def run_references(ctx: StepContext) -> Any:
            return value.render(ctx.scope)

        return run_references

    template = compile_prompt(step.template, "jinja2")
    parse_json = step.parse_json

    async def run_jinja(ctx: StepContext) -> Any:
        # Jinja sees `request` and `steps` (outputs by step name).
        text = template.render({"request": ctx.scope.request, "steps": ctx.scope.outputs})
        if not parse_json:
            return text
        try:
            return json.loads(text)
        except ValueError as error:
            raise InvalidRequest(f"template output is not JSON: {error}") from None

    return run_jinja
