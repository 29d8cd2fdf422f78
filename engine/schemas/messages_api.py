"""Anthropic's Messages API request (`POST /v1/messages`), as Headrace accepts it.

Served on the chat gateway, so what has no chat-completion equivalent is
refused: unknown fields and block types by validation, `top_k` and server
tools (web search, code execution...) by name in the translation.
`cache_control` hints are accepted and ignored: caching is the upstream's
business and dropping the hint changes no answer. The last models describe
the answer and Anthropic's error body for the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from engine.schemas.common import Strict
from engine.schemas.responses_api import STRING_TOO, wrap_string


def _text_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


class TextBlock(Strict):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[Any] | None = None


class Base64Source(Strict):
    type: Literal["base64"]
    media_type: str = Field(pattern=r"^image/[\w.+-]+$")
    data: str = Field(min_length=1)


class UrlSource(Strict):
    type: Literal["url"]
    url: str = Field(min_length=1)


class ImageBlock(Strict):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]
    cache_control: dict[str, Any] | None = None


class ToolUseBlock(Strict):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class ToolResultBlock(Strict):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: Annotated[list[TextBlock], wrap_string(_text_blocks), STRING_TOO] = []
    is_error: bool | None = None
    cache_control: dict[str, Any] | None = None


Block = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock,
                  Field(discriminator="type")]


class MessageParam(Strict):
    role: Literal["user", "assistant"]
    content: Annotated[list[Block], wrap_string(_text_blocks), STRING_TOO]


class CustomTool(Strict):
    type: Literal["custom"] | None = None
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    input_schema: dict[str, Any]
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None


class ServerTool(BaseModel):
    """A server tool (`web_search_20250305`, `bash_20250124`...); refused by name."""

    model_config = ConfigDict(extra="allow")
    type: str


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "custom" if kind in (None, "custom") else "server"


ToolSpec = Annotated[
    Annotated[CustomTool, Tag("custom")] | Annotated[ServerTool, Tag("server")],
    Discriminator(_tool_kind),
]


class ToolChoice(Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(Strict):
    user_id: str | None = Field(None, max_length=512)


class MessagesRequest(Strict):
    model: str = Field(min_length=1, max_length=256)
    max_tokens: int = Field(ge=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: Annotated[list[TextBlock], wrap_string(_text_blocks), STRING_TOO] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0, description="Not supported: chat has no top_k")
    stop_sequences: list[str] | None = Field(None, max_length=4)
    stream: bool = False
    tools: list[ToolSpec] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    metadata: Metadata | None = None


# --- the answer, for the OpenAPI document ---------------------------------------------------


class MessageUsage(BaseModel):
    input_tokens: int
    output_tokens: int


class MessageObject(BaseModel):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]] = Field(description="`text` and `tool_use` blocks")
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: MessageUsage


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicError(BaseModel):
    """An error, in Anthropic's format."""

    type: Literal["error"]
    error: AnthropicErrorDetail
