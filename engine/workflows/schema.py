"""The workflow definition: a `WorkflowSpec` with steps tagged by `type`.

String fields of steps may hold `${request:...}` / `${step:...}` references
(see `engine.workflows.references`). Unknown fields are an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator, model_validator

from engine.knowledge.filters import parse_filter
from engine.schemas.common import ResourceId, Strict

StepName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
OnError = Literal["fail_workflow", "skip_step", "fallback_value"]
STEP_TYPES = ("chat_completion", "knowledge_base_search", "crag_scoring", "conditional",
              "http_request", "template")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "is_empty", "is_not_empty", "contains",
             "starts_with", "ends_with")


class RetryPolicy(Strict):
    max_attempts: int = Field(1, ge=1, le=10, description="Attempts in all, 1 = no retry")
    backoff_ms: int = Field(0, ge=0, le=60_000,
                            description="Wait before the 2nd attempt, doubled after each retry")


class StepBase(Strict):
    name: StepName
    description: str | None = Field(None, max_length=2000)
    depends_on: list[StepName] = Field(default_factory=list, max_length=100)
    on_error: OnError = "fail_workflow"
    fallback_value: Any = Field(None, description="The step's output when on_error is "
                                "fallback_value and the step fails")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_ms: int | None = Field(None, ge=1, le=3_600_000, description="Per attempt")

    @model_validator(mode="after")
    def _fallback(self):
        if self.on_error == "fallback_value" and "fallback_value" not in self.model_fields_set:
            raise ValueError("on_error fallback_value needs fallback_value")
        return self


class ChatCompletionStep(StepBase):
    type: Literal["chat_completion"]
    model_id: str = Field(min_length=1, max_length=256, description="A model or chain")
    prompt_id: ResourceId | None = None
    prompt_variables: dict[str, Any] | None = None
    system_message: str | None = None
    user_message: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, ge=0, le=1)
    response_format: dict[str, Any] | None = Field(
        None, description="A JSON schema for structured output (or an OpenAI response_format)")

    @model_validator(mode="after")
    def _messages(self):
        if self.prompt_id is not None:
            if self.system_message is not None or self.user_message is not None:
                raise ValueError("give either prompt_id or system_message/user_message")
        elif self.prompt_variables is not None:
            raise ValueError("prompt_variables needs prompt_id")
        elif self.user_message is None:
            raise ValueError("give prompt_id or user_message")
        return self


class KnowledgeBaseSearchStep(StepBase):
    type: Literal["knowledge_base_search"]
    knowledge_base_id: str = Field(min_length=1, max_length=256)
    query: str = Field(min_length=1)
    top_k: int | str = Field(10, description="A number or a reference")
    similarity_threshold: float | str | None = None
    filter: dict[str, Any] | None = None
    hybrid: bool = False

    @field_validator("filter")
    @classmethod
    def _filter(cls, value):
        if value is not None and "${" not in repr(value):
            parse_filter(value)
        return value


class CragScoringStep(StepBase):
    type: Literal["crag_scoring"]
    input_documents: str | None = Field(
        None, description="A reference; default the previous search step's documents")
    query: str = Field(min_length=1)
    strategy: Literal["threshold", "llm", "hybrid"] = "hybrid"
    threshold: float | None = Field(
        None, description="One cut-off: sets both correct_threshold and ambiguous_threshold")
    correct_threshold: float = 0.7
    ambiguous_threshold: float = 0.4
    model_id: str | None = Field(None, min_length=1, max_length=256)
    prompt_id: ResourceId | None = None
    refine: bool = Field(False, description="Keep only the relevant sentences of correct "
                         "documents (knowledge refinement)")
    max_concurrency: int = Field(8, ge=1, le=64)

    @model_validator(mode="after")
    def _check(self):
        if self.strategy != "threshold" and self.model_id is None:
            raise ValueError(f"strategy {self.strategy} needs model_id for the LLM judge")
        if self.threshold is not None:
            self.correct_threshold = self.ambiguous_threshold = self.threshold
        if self.ambiguous_threshold > self.correct_threshold:
            raise ValueError("ambiguous_threshold must not exceed correct_threshold")
        return self


class GoToStep(Strict):
    go_to_step: StepName
    max_iterations: int | None = Field(
        None, ge=1, le=1000, description="Jumps taken at most; needed when jumping backwards")


class EndWorkflow(Strict):
    end_workflow: Any = Field(description="The workflow output (references allowed)")


Action = Literal["continue"] | GoToStep | EndWorkflow


class Condition(Strict):
    field: str = Field(min_length=1, description="A reference, such as ${step:search:count}")
    operator: Literal[OPERATORS]  # type: ignore[valid-type]
    value: Any = None
    action: Action = "continue"

    @field_validator("field")
    @classmethod
    def _reference(cls, value: str) -> str:
        if "${" not in value:
            raise ValueError("field must be a reference such as ${step:name:path} or "
                             "${request:path}")
        return value


class ConditionalStep(StepBase):
    type: Literal["conditional"]
    conditions: list[Condition] = Field(default_factory=list, max_length=100)
    default_action: Action = "continue"


class HttpRequestStep(StepBase):
    type: Literal["http_request"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    fail_on_error_status: bool = Field(True, description="A status of 400 or more fails the step")
    max_response_bytes: int = Field(10_000_000, ge=1, le=100_000_000)


class TemplateStep(StepBase):
    type: Literal["template"]
    template: Any = Field(description="${...} references in any JSON value, or Jinja2 text")
    format: Literal["references", "jinja2"] = "references"
    parse_json: bool = Field(False, description="jinja2: parse the rendered text as JSON")

    @model_validator(mode="after")
    def _check(self):
        if self.format == "jinja2" and not isinstance(self.template, str):
            raise ValueError("a jinja2 template must be a string")
        return self


Step = Annotated[
    ChatCompletionStep | KnowledgeBaseSearchStep | CragScoringStep | ConditionalStep
    | HttpRequestStep | TemplateStep,
    Field(discriminator="type"),
]


class WorkflowSpec(Strict):
    id: ResourceId
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    input_schema: dict[str, Any] = Field(default_factory=dict, description="JSON Schema")
    steps: list[Step] = Field(min_length=1, max_length=500)
    output: Any = Field(None, description="Output mapping with references; default the "
                        "output of the last step that ran")
    enabled: bool = True

    @field_validator("input_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as error:
            raise ValueError(f"not a valid JSON Schema: {error.message}") from None
        return value
