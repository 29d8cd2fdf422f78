"""OpenAI's Responses API request (`POST /v1/responses`), as Headrace accepts it.

Headrace serves it on the chat gateway, so only what maps onto a chat
completion is accepted; unknown fields are a 400, as on chat. Hosted tools
(web search, file search...) are parsed loosely so the translation can refuse
them by name instead of a confusing "type should be 'function'". The
`Response*` models at the end describe the answer for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from engine.schemas.common import Strict

# --- "a string or a list" ----------------------------------------------------------------


def _string_too(schema: dict[str, Any]) -> None:
    array = {k: v for k, v in schema.items() if k not in ("title", "description")}
    for key in array:
        schema.pop(key)
    schema["anyOf"] = [{"type": "string"}, array]


STRING_TOO = Field(json_schema_extra=_string_too)


def wrap_string(make: Callable[[str], list[Any]]) -> BeforeValidator:
    """Accept a plain string where both APIs also take a list, by wrapping it.

    Validating one list type (instead of `str | list[...]`) keeps error paths
    clean: `input[0].role`, not `input.list[tagged-union[...]][0].role`. Use
    with `STRING_TOO`, which documents the string form in the OpenAPI schema.
    """
    return BeforeValidator(lambda value: make(value) if isinstance(value, str) else value)

# --- input items -------------------------------------------------------------------------


class InputText(Strict):
    type: Literal["input_text"]
    text: str


class InputImage(Strict):
    type: Literal["input_image"]
    image_url: str | None = Field(None, min_length=1, description="URL or data URL")
    file_id: str | None = Field(None, description="Not supported: Headrace stores no files")
    detail: Literal["auto", "low", "high"] | None = None


class OutputText(Strict):
    """Text of an earlier assistant answer, sent back as history."""

    type: Literal["output_text"]
    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class Refusal(Strict):
    type: Literal["refusal"]
    refusal: str


InputPart = Annotated[InputText | InputImage | OutputText | Refusal, Field(discriminator="type")]
Content = Annotated[
    list[InputPart],
    wrap_string(lambda text: [{"type": "input_text", "text": text}]),
    STRING_TOO,
]


class MessageItem(Strict):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content
    # Read-only fields of an output message passed back as input.
    id: str | None = None
    status: str | None = None
    phase: str | None = None


class FunctionCallItem(Strict):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(Strict):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: Annotated[
        list[InputText], wrap_string(lambda text: [{"type": "input_text", "text": text}]),
        STRING_TOO,
    ]
    id: str | None = None
    status: str | None = None


def _item_type(value: Any) -> str:
    # A message may omit `type` ("easy input message"), so the tag defaults to it.
    if isinstance(value, dict):
        return value.get("type", "message")
    return getattr(value, "type", "message")


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(_item_type),
]

# --- tools and formats -------------------------------------------------------------------


class FunctionTool(Strict):
    type: Literal["function"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class HostedTool(BaseModel):
    """Any other tool type (web_search, file_search, mcp...); refused by name."""

    model_config = ConfigDict(extra="allow")
    type: str


def _tool_type(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "function" if kind == "function" else "hosted"


ToolSpec = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[HostedTool, Tag("hosted")],
    Discriminator(_tool_type),
]


class ToolChoiceFunction(Strict):
    type: Literal["function"]
    name: str


class PlainFormat(Strict):
    type: Literal["text", "json_object"]


class JsonSchemaFormat(Strict):
    type: Literal["json_schema"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(Strict):
    format: Annotated[PlainFormat | JsonSchemaFormat, Field(discriminator="type")] | None = None


class ResponsesRequest(Strict):
    model: str = Field(min_length=1, max_length=256)
    input: Annotated[
        list[InputItem],
        wrap_string(lambda text: [{"type": "message", "role": "user", "content": text}]),
        STRING_TOO, Field(min_length=1),
    ]
    instructions: str | None = Field(None, description="Sent as a system message")
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    tools: list[ToolSpec] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    stream: bool = False
    metadata: dict[str, str] | None = None
    user: str | None = Field(None, max_length=512)
    store: bool | None = Field(None, description="Accepted; Headrace never stores responses")
    previous_response_id: str | None = Field(
        None, description="Not supported: Headrace stores no responses; send the history"
    )


# --- the answer, for the OpenAPI document ---------------------------------------------------


class ResponseUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens_details: dict[str, int]


class ResponseObject(BaseModel):
    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: str
    output: list[dict[str, Any]] = Field(description="`message` and `function_call` items")
    usage: ResponseUsage | None = None
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    instructions: str | None = None
    metadata: dict[str, str]
    parallel_tool_calls: bool
    tool_choice: Any
    tools: list[dict[str, Any]]
    temperature: float | None = None
    top_p: float | None = None
