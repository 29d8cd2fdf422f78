"""Anthropic's Messages API onto the chat gateway: requests in, `message` objects out.

The inverse of `engine.formats.anthropic` (which speaks to Anthropic
upstreams): here an Anthropic client speaks to Headrace. `system` becomes a
system message, `tool_result` blocks become tool messages (ahead of the rest
of their user turn, where Anthropic requires them), `tool_use` blocks become
tool calls, base64 images become data URLs. The answer's finish reason maps
back to Anthropic's stop reason, and errors take Anthropic's error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from pydantic import ValidationError

from engine.errors import InvalidRequest, NotSupported, UpstreamError
from engine.formats.openai import new_id
from engine.schemas.chat import ChatCompletionRequest
from engine.schemas.messages_api import (
    Base64Source,
    CustomTool,
    ImageBlock,
    MessagesRequest,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from engine.validation import invalid_from

Event = tuple[str, dict[str, Any]]  # (event type, data)

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}

# HTTP status -> Anthropic error type (its SDKs pick the exception by status).
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error"}


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


# --- requests -----------------------------------------------------------------------------


def _image_part(block: ImageBlock) -> dict[str, Any]:
    source = block.source
    if isinstance(source, Base64Source):
        url = f"data:{source.media_type};base64,{source.data}"
    else:
        url = source.url
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: ToolResultBlock) -> dict[str, Any]:
    text = "".join(b.text for b in block.content)
    # Chat has no error flag on tool messages; say it in the content instead.
    if block.is_error:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}


def _messages(body: MessagesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.system:
        messages.append({"role": "system", "content": "\n".join(b.text for b in body.system)})
    for index, message in enumerate(body.messages):
        where = f"messages[{index}].content"
        if message.role == "assistant":
            text, calls = "", []
            for position, block in enumerate(message.content):
                if isinstance(block, TextBlock):
                    text += block.text
                elif isinstance(block, ToolUseBlock):
                    calls.append({"id": block.id, "type": "function", "function": {
                        "name": block.name, "arguments": orjson.dumps(block.input).decode()}})
                else:
                    raise InvalidRequest(f"an assistant message cannot hold a {block.type} "
                                         "block", param=f"{where}[{position}].type")
            turn: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                turn["tool_calls"] = calls
            elif not text:
                turn["content"] = ""
            messages.append(turn)
            continue
        parts: list[dict[str, Any]] = []
        for position, block in enumerate(message.content):
            if isinstance(block, ToolResultBlock):
                messages.append(_tool_result(block))
            elif isinstance(block, TextBlock):
                parts.append({"type": "text", "text": block.text})
            elif isinstance(block, ImageBlock):
                parts.append(_image_part(block))
            else:
                raise InvalidRequest("a user message cannot hold a tool_use block",
                                     param=f"{where}[{position}].type")
        if parts:
            plain = all(p["type"] == "text" for p in parts)
            content = "".join(p["text"] for p in parts) if plain else parts
            messages.append({"role": "user", "content": content})
    return messages


def _tools(body: MessagesRequest, chat: dict[str, Any]) -> None:
    tools = body.tools or []
    for index, tool in enumerate(tools):
        if not isinstance(tool, CustomTool):
            raise NotSupported(f"server tool '{tool.type}' is not supported by Headrace; "
                               "only client tools (name, input_schema) are",
                               param=f"tools[{index}].type")
    if tools:
        chat["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.input_schema,
            "strict": t.strict}} for t in tools if isinstance(t, CustomTool)]
    choice = body.tool_choice
    if choice is None:
        return
    if choice.type in ("any", "tool") and not tools:
        raise InvalidRequest(f"tool_choice {choice.type} needs tools", param="tool_choice")
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequest("tool_choice of type tool needs name", param="tool_choice.name")
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        chat["parallel_tool_calls"] = False


def to_chat(body: MessagesRequest) -> ChatCompletionRequest:
    """The chat completion that serves a Messages request."""
    if body.top_k is not None:
        raise NotSupported("top_k is not supported: Headrace serves /v1/messages through "
                           "OpenAI-style chat completions, which have no top_k",
                           param="top_k")
    chat: dict[str, Any] = {"model": body.model, "messages": _messages(body),
                            "max_tokens": body.max_tokens, "stream": body.stream}
    for name in ("temperature", "top_p"):
        if (value := getattr(body, name)) is not None:
            chat[name] = value
    if body.stop_sequences:
        chat["stop"] = body.stop_sequences
    if body.metadata and body.metadata.user_id:
        chat["user"] = body.metadata.user_id
    _tools(body, chat)
    try:
        return ChatCompletionRequest.model_validate(chat)
    except ValidationError as error:
        raise invalid_from(error) from None


# --- responses ----------------------------------------------------------------------------


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamError("the upstream answered with tool call arguments that are not a "
                            "JSON object")
    return value


def from_completion(completion: dict[str, Any], body: MessagesRequest) -> dict[str, Any]:
    choices = completion.get("choices") or []
    if not choices:
        raise UpstreamError("the upstream answered with no choices")
    message = choices[0].get("message") or {}
    content: list[dict[str, Any]] = []
    if text := message.get("content") or message.get("refusal"):
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_id("toolu_"),
                        "name": function.get("name") or "",
                        "input": _tool_input(function.get("arguments") or "")})
    usage = completion.get("usage") or {}
    return {
        "id": new_id("msg_"), "type": "message", "role": "assistant", "model": body.model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choices[0].get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": int(usage.get("prompt_tokens") or 0),
                  "output_tokens": int(usage.get("completion_tokens") or 0)},
    }


class MessageStream:
    """`chat.completion.chunk` dicts to Anthropic stream events, one chunk at a time.

    Anthropic's blocks are sequential: a text block closes when a tool call
    starts. Input tokens are only known at the end of a chat stream, so
    `message_start` says 0 and `message_delta` carries the real counts (the
    Anthropic SDK takes both from there).
    """

    def __init__(self, body: MessagesRequest):
        self.body = body
        self.blocks = 0  # blocks started so far
        self.open: tuple[str, int | None] | None = None  # ("text" | "tool", chat tool index)
        self.tools: dict[int, int] = {}  # chat tool_call index -> block index
        self.stop_reason = "end_turn"
        self.usage = {"input_tokens": 0, "output_tokens": 0}

    def start(self) -> Iterator[Event]:
        yield "message_start", {"type": "message_start", "message": {
            "id": new_id("msg_"), "type": "message", "role": "assistant",
            "model": self.body.model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": dict(self.usage)}}

    def _begin(self, kind: tuple[str, int | None], block: dict[str, Any]) -> Iterator[Event]:
        yield from self._close()
        self.open = kind
        yield "content_block_start", {"type": "content_block_start", "index": self.blocks,
                                      "content_block": block}
        if self.blocks == 0:
            yield "ping", {"type": "ping"}
        self.blocks += 1

    def _close(self) -> Iterator[Event]:
        if self.open is not None:
            self.open = None
            yield "content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1}

    def _delta(self, index: int, delta: dict[str, Any]) -> Event:
        return "content_block_delta", {"type": "content_block_delta", "index": index,
                                       "delta": delta}

    def feed(self, chunk: dict[str, Any]) -> Iterator[Event]:
        if usage := chunk.get("usage"):
            self.usage = {"input_tokens": int(usage.get("prompt_tokens") or 0),
                          "output_tokens": int(usage.get("completion_tokens") or 0)}
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if text := delta.get("content") or delta.get("refusal"):
                if self.open != ("text", None):
                    yield from self._begin(("text", None), {"type": "text", "text": ""})
                yield self._delta(self.blocks - 1, {"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or ():
                yield from self._tool(call)
            if reason := choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(reason, "end_turn")

    def _tool(self, call: dict[str, Any]) -> Iterator[Event]:
        position = call.get("index", 0)
        function = call.get("function") or {}
        if position not in self.tools:
            self.tools[position] = self.blocks
            yield from self._begin(("tool", position), {
                "type": "tool_use", "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name") or "", "input": {}})
        if arguments := function.get("arguments"):
            yield self._delta(self.tools[position],
                              {"type": "input_json_delta", "partial_json": arguments})

    def finish(self) -> Iterator[Event]:
        yield from self._close()
        yield "message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                                "usage": dict(self.usage)}
        yield "message_stop", {"type": "message_stop"}

    def fail(self, message: str, status: int) -> Iterator[Event]:
        yield "error", error_body(status, message)
