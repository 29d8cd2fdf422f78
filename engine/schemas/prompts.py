"""Prompt templates: `${var:name}` substitution or sandboxed Jinja2."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from engine.schemas.common import ResourceId, Strict


class PromptSpec(Strict):
    id: ResourceId
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    content: str = Field(min_length=1, max_length=200_000)
    format: Literal["template", "jinja2"] = Field(
        "template",
        description="`template`: ${var:name} and ${var:name:default}; `jinja2`: a sandboxed "
        "Jinja2 template",
    )
    tags: list[str] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _compiles(self) -> PromptSpec:
        from engine.prompts import compile_prompt  # a template that cannot compile is a 400

        compile_prompt(self.content, self.format)
        return self


class RenderRequest(Strict):
    variables: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(None, ge=1, description="Render this version, not the latest")


class RenderResponse(Strict):
    rendered: str
    prompt_id: str
    version: int
    variables_used: list[str]
