"""OpenAI's chat completion and embedding requests, as Headrace accepts them.

Unknown fields are a 400 (as OpenAI answers), so a misspelt parameter is never
silently dropped. LiteLLM's aliases (`max_output_tokens`, `end_user`, `tags`)
are accepted and folded into the OpenAI fields by `normalised()`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.schemas.common import ResourceId, Strict


class TextPart(Strict):
    type: Literal["text"]
    text: str


class ImageUrl(Strict):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(Strict):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(Strict):
    name: str
    arguments: str


class ToolCall(Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    # Clients often send back an assistant message from an earlier response;
    # its read-only fields (refusal, annotations, audio) are accepted and ignored.
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, max_length=256)
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None
    annotations: list[Any] | None = None
    audio: Any | None = None
    prompt_id: ResourceId | None = Field(None, description="Use a stored prompt as content")
    prompt_version: int | None = Field(None, ge=1)
    variables: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ChatMessage:
        if self.prompt_id is not None:
            if self.content is not None:
                raise ValueError("give either content or prompt_id, not both")
        elif self.variables is not None or self.prompt_version is not None:
            raise ValueError("variables and prompt_version need prompt_id")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role in ("system", "developer", "user", "tool") and self.prompt_id is None:
            if self.content is None:
                raise ValueError(f"a {self.role} message needs content")
        if self.role == "assistant" and self.content is None and not (
            self.tool_calls or self.function_call or self.prompt_id
        ):
            raise ValueError("an assistant message needs content or tool_calls")
        return self

    def text(self) -> str:
        """The message's text parts joined (images are left out)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class FunctionDef(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(Strict):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(Strict):
    name: str


class ToolChoiceFunction(Strict):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(Strict):
    name: str = Field("response", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _check(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs json_schema")
        return self


class StreamOptions(Strict):
    include_usage: bool = False


class ChatCompletionRequest(Strict):
    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    seed: int | None = None
    user: str | None = Field(None, max_length=512)
    metadata: dict[str, str] | None = None
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    service_tier: str | None = None
    store: bool | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    # LiteLLM aliases
    max_output_tokens: int | None = Field(None, ge=1, description="Alias of max_tokens")
    end_user: str | None = Field(None, max_length=512, description="Alias of user")
    tags: list[str] | None = Field(None, max_length=64, description="Labels kept with usage")

    @model_validator(mode="after")
    def _check(self) -> ChatCompletionRequest:
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        if len(stops) > 4:
            raise ValueError("stop: at most 4 sequences")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream: true")
        if self.tool_choice not in (None, "none", "auto") and not self.tools:
            raise ValueError("tool_choice needs tools")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    def normalised(self) -> ChatCompletionRequest:
        """Fold LiteLLM's aliases into the OpenAI fields."""
        updates: dict[str, Any] = {}
        if self.max_output_tokens is not None and self.max_tokens is None:
            updates["max_tokens"] = self.max_output_tokens
        if self.end_user is not None and self.user is None:
            updates["user"] = self.end_user
        if updates or self.max_output_tokens is not None or self.end_user is not None:
            updates.update(max_output_tokens=None, end_user=None)
            return self.model_copy(update=updates)
        return self

    @property
    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens or self.max_output_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class EmbeddingRequest(Strict):
    model: str = Field(min_length=1, max_length=256)
    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
        | Annotated[list[int], Field(min_length=1)]
        | Annotated[list[Annotated[list[int], Field(min_length=1)]], Field(min_length=1)]
    )
    dimensions: int | None = Field(None, ge=1, le=65_536)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = Field(None, max_length=512)

    @property
    def texts(self) -> list[str] | None:
        """The inputs as strings, or None when they are token arrays."""
        if isinstance(self.input, str):
            return [self.input]
        if self.input and isinstance(self.input[0], str):
            return list(self.input)  # type: ignore[arg-type]
        return None
