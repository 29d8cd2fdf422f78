"""OpenAI chat requests to Anthropic's Messages API, and its answers back.

System and developer messages become the top-level `system`; tool results
become `tool_result` blocks in a user turn; consecutive turns of one role are
merged. `response_format` is served the way Anthropic recommends: a forced
tool whose input schema is the requested schema, whose input becomes the
message content. Parameters Anthropic cannot honour are refused by name.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import orjson

from engine.errors import InvalidRequest, UpstreamError
from engine.formats.openai import ChunkFactory, append_turn, completion, tool_arguments, tool_call
from engine.gateway.providers import unsupported
from engine.schemas.chat import ChatCompletionRequest, ChatMessage, ImagePart

UNSUPPORTED = ("n", "logprobs", "top_logprobs", "logit_bias", "presence_penalty",
               "frequency_penalty", "seed", "reasoning_effort")
DEFAULT_MAX_TOKENS = 4096
JSON_TOOL_DESCRIPTION = "Answer by calling this tool with the response as its input."
_DATA_URL = re.compile(r"^data:(?P<type>[\w/+.-]+);base64,(?P<data>.*)$", re.S)

STOP_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
    "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter",
}


def image_source(part: ImagePart) -> dict[str, Any]:
    url = part.image_url.url
    match = _DATA_URL.match(url)
    if match:
        return {"type": "base64", "media_type": match["type"], "data": match["data"]}
    return {"type": "url", "url": url}


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for part in message.content or []:
        if isinstance(part, ImagePart):
            blocks.append({"type": "image", "source": image_source(part)})
        else:
            blocks.append({"type": "text", "text": part.text})
    return blocks


def json_tool_name(request: ChatCompletionRequest) -> str | None:
    """The forced tool's name when the request asks for JSON output."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    return fmt.json_schema.name if fmt.json_schema else "json_response"


def json_tool_schema(request: ChatCompletionRequest) -> dict[str, Any]:
    fmt = request.response_format
    assert fmt is not None
    if fmt.json_schema and fmt.json_schema.schema_:
        return fmt.json_schema.schema_
    return {"type": "object"}


def to_anthropic(request: ChatCompletionRequest, model: str) -> dict[str, Any]:
    unsupported("anthropic", request, UNSUPPORTED)
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequest("provider anthropic accepts temperature between 0 and 1",
                             param="temperature")
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        append_turn(turns, role, blocks)

    for index, message in enumerate(request.messages):
        where = f"messages[{index}]"
        if message.role in ("system", "developer"):
            system.append(message.text())
        elif message.role == "user":
            add("user", _blocks(message))
        elif message.role == "assistant":
            blocks = _blocks(message)
            for call in message.tool_calls or []:
                blocks.append({"type": "tool_use", "id": call.id, "name": call.function.name,
                               "input": tool_arguments(call.function.arguments, where)})
            add("assistant", blocks)
        elif message.role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": message.tool_call_id,
                          "content": message.text()}])
        else:
            raise InvalidRequest(f"provider anthropic does not support role {message.role}",
                                 param=f"{where}.role")

    payload: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": request.token_limit or DEFAULT_MAX_TOKENS,
    }
    if system:
        payload["system"] = "\n\n".join(system)
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p")):
        if (value := getattr(request, ours)) is not None:
            payload[theirs] = value
    if request.stop is not None:
        payload["stop_sequences"] = request.stop_list
    if request.user:
        payload["metadata"] = {"user_id": request.user}

    forced = json_tool_name(request)
    if forced and request.tools:
        raise InvalidRequest("provider anthropic cannot combine tools with response_format",
                             param="response_format")
    if forced:
        payload["tools"] = [{"name": forced, "description": JSON_TOOL_DESCRIPTION,
                             "input_schema": json_tool_schema(request)}]
        payload["tool_choice"] = {"type": "tool", "name": forced}
    elif request.tools:
        payload["tools"] = [
            {"name": t.function.name, "description": t.function.description or "",
             "input_schema": t.function.parameters or {"type": "object", "properties": {}}}
            for t in request.tools
        ]
        choice = _tool_choice(request)
        if choice is not None:
            payload["tool_choice"] = choice
    return payload


def _tool_choice(request: ChatCompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is None:
        return None
    if choice is None or choice == "auto":
        result: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    else:
        result = {"type": "tool", "name": choice.function.name}
    if request.parallel_tool_calls is False:
        result["disable_parallel_tool_use"] = True
    return result


def from_anthropic(message: dict[str, Any], request: ChatCompletionRequest) -> dict[str, Any]:
    forced = json_tool_name(request)
    texts, calls = [], []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input", {})).decode()
            if forced:
                texts.append(arguments)
            else:
                calls.append(tool_call(block["id"], block["name"], arguments))
    finish = STOP_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
    if forced and finish == "tool_calls":
        finish = "stop"
    usage = message.get("usage") or {}
    return completion(
        id=message.get("id") or "", model=message.get("model") or "",
        content="".join(texts) if texts or not calls else None, tool_calls=calls or None,
        finish_reason=finish, prompt_tokens=_input_tokens(usage),
        completion_tokens=int(usage.get("output_tokens") or 0),
    )


def _input_tokens(usage: dict[str, Any]) -> int:
    # Cache reads and writes are input tokens too, billed by the same request.
    return sum(int(usage.get(k) or 0) for k in
               ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))


_ERROR_STATUS = {"rate_limit_error": 429, "overloaded_error": 529, "api_error": 500,
                 "invalid_request_error": 400, "authentication_error": 401,
                 "permission_error": 403, "not_found_error": 404, "request_too_large": 413}


class StreamTranslator:
    """Anthropic stream events to OpenAI chunks, one event at a time."""

    def __init__(self, request: ChatCompletionRequest, name: str):
        self.forced = json_tool_name(request)
        self.name = name
        self.chunks: ChunkFactory | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.tool_index: dict[int, int] = {}

    def feed(self, event: str | None, data: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kind = data.get("type") or event
        if kind == "message_start":
            message = data.get("message") or {}
            self.chunks = ChunkFactory(message.get("id") or "", message.get("model") or "")
            self.input_tokens = _input_tokens(message.get("usage") or {})
            yield self.chunks.delta({"role": "assistant", "content": ""})
            return
        if kind == "error":
            error = data.get("error") or {}
            raise UpstreamError(
                f"{self.name} reported {error.get('type', 'an error')} mid-stream: "
                f"{error.get('message', '')}"[:400],
                status=_ERROR_STATUS.get(error.get("type", ""), 500),
            )
        if self.chunks is None:
            return  # ping or unknown event before message_start
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use" and not self.forced:
                index = self.tool_index[data.get("index", 0)] = len(self.tool_index)
                yield self.chunks.delta({"tool_calls": [
                    {"index": index, "id": block.get("id"), "type": "function",
                     "function": {"name": block.get("name"), "arguments": ""}}]})
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                yield self.chunks.delta({"content": delta.get("text", "")})
            elif delta.get("type") == "input_json_delta":
                piece = delta.get("partial_json", "")
                if self.forced:
                    yield self.chunks.delta({"content": piece})
                else:
                    index = self.tool_index.get(data.get("index", 0), 0)
                    yield self.chunks.delta(
                        {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        elif kind == "message_delta":
            reason = (data.get("delta") or {}).get("stop_reason") or "end_turn"
            self.output_tokens = int((data.get("usage") or {}).get("output_tokens") or 0)
            finish = STOP_REASONS.get(reason, "stop")
            if self.forced and finish == "tool_calls":
                finish = "stop"
            yield self.chunks.delta({}, finish_reason=finish)
        elif kind == "message_stop":
            yield self.chunks.usage(self.input_tokens, self.output_tokens)


def decode_data_url(url: str) -> tuple[str, bytes] | None:
    match = _DATA_URL.match(url)
    if not match:
        return None
    return match["type"], base64.b64decode(match["data"])
