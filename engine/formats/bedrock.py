"""OpenAI chat and embedding requests to AWS Bedrock, and its answers back.

Chat goes through the Converse API, which is the same for every model on
Bedrock: system and developer messages become `system` blocks, tool results
become `toolResult` blocks in a user turn, consecutive turns of one role are
merged. `response_format` is served as the Anthropic format serves it: a forced
tool whose input schema is the requested schema, whose input becomes the
message content. Images must be inline (data: URLs): Converse takes bytes, and
fetching a URL on the caller's behalf is not the gateway's job. Parameters
Converse cannot honour are refused by name.

Embeddings go through InvokeModel, whose bodies are the model vendor's own:
Amazon Titan (one text per call) and Cohere (a batch of texts per call).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

import orjson

from engine.errors import InvalidRequest, UpstreamError
from engine.formats.anthropic import JSON_TOOL_DESCRIPTION, json_tool_name, json_tool_schema
from engine.formats.openai import (
    ChunkFactory,
    append_turn,
    completion,
    new_id,
    tool_arguments,
    tool_call,
)
from engine.gateway.providers import unsupported
from engine.schemas.chat import ChatCompletionRequest, ChatMessage, ImagePart

UNSUPPORTED = ("n", "logprobs", "top_logprobs", "logit_bias", "presence_penalty",
               "frequency_penalty", "seed", "reasoning_effort")

STOP_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
    "tool_use": "tool_calls", "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter", "model_context_window_exceeded": "length",
    "malformed_model_output": "stop", "malformed_tool_use": "stop",
}

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                 "image/gif": "gif", "image/webp": "webp"}

# Exception events of a Converse stream (botocore usually raises them itself).
STREAM_ERRORS = {"internalServerException": 500, "modelStreamErrorException": 424,
                 "validationException": 400, "throttlingException": 429,
                 "serviceUnavailableException": 503}

DATA_URL = re.compile(r"^data:(?P<type>[\w/+.-]+);base64,(?P<data>.*)$", re.S)
COHERE_BATCH = 96  # texts per InvokeModel call that Cohere embed accepts


# --- chat request -----------------------------------------------------------------------


def image_block(part: ImagePart, where: str) -> dict[str, Any]:
    url = part.image_url.url
    match = DATA_URL.match(url)
    if not match:
        raise InvalidRequest("provider bedrock accepts images only as data: URLs "
                             "(base64), not links", param=where)
    media_type = match["type"].lower()
    fmt = IMAGE_FORMATS.get(media_type)
    if fmt is None:
        raise InvalidRequest(f"provider bedrock does not support images of type {media_type} "
                             f"(png, jpeg, gif, webp)", param=where)
    try:
        data = base64.b64decode(match["data"], validate=True)
    except binascii.Error:
        raise InvalidRequest("the image data: URL is not valid base64", param=where) from None
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _blocks(message: ChatMessage, where: str) -> list[dict[str, Any]]:
    # Converse rejects blank text blocks, so empty text is left out.
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(message.content or []):
        if isinstance(part, ImagePart):
            blocks.append(image_block(part, f"{where}.content[{index}].image_url.url"))
        elif part.text:
            blocks.append({"text": part.text})
    return blocks


def to_converse(request: ChatCompletionRequest, model: str) -> dict[str, Any]:
    """Keyword arguments for `converse` / `converse_stream`."""
    unsupported("bedrock", request, UNSUPPORTED)
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        append_turn(turns, role, blocks)

    for index, message in enumerate(request.messages):
        where = f"messages[{index}]"
        if message.role in ("system", "developer"):
            if text := message.text():
                system.append({"text": text})
        elif message.role == "user":
            add("user", _blocks(message, where))
        elif message.role == "assistant":
            blocks = _blocks(message, where)
            for call in message.tool_calls or []:
                blocks.append({"toolUse": {
                    "toolUseId": call.id, "name": call.function.name,
                    "input": tool_arguments(call.function.arguments, f"{where}.tool_calls"),
                }})
            add("assistant", blocks)
        elif message.role == "tool":
            add("user", [{"toolResult": {"toolUseId": message.tool_call_id,
                                         "content": [{"text": message.text()}]}}])
        else:
            raise InvalidRequest(f"provider bedrock does not support role {message.role}",
                                 param=f"{where}.role")

    payload: dict[str, Any] = {"modelId": model, "messages": turns}
    if system:
        payload["system"] = system
    inference: dict[str, Any] = {}
    if request.token_limit is not None:
        inference["maxTokens"] = request.token_limit
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop is not None:
        inference["stopSequences"] = request.stop_list
    if inference:
        payload["inferenceConfig"] = inference

    forced = json_tool_name(request)
    if forced and request.tools:
        raise InvalidRequest("provider bedrock cannot combine tools with response_format",
                             param="response_format")
    if forced:
        payload["toolConfig"] = {
            "tools": [{"toolSpec": {"name": forced, "description": JSON_TOOL_DESCRIPTION,
                                    "inputSchema": {"json": json_tool_schema(request)}}}],
            "toolChoice": {"tool": {"name": forced}},
        }
    elif request.tools and request.tool_choice != "none":
        # Converse has no "none" choice: the tools are left out instead.
        tool_config: dict[str, Any] = {"tools": [_tool_spec(t.function) for t in request.tools]}
        choice = request.tool_choice
        if choice == "auto":
            tool_config["toolChoice"] = {"auto": {}}
        elif choice == "required":
            tool_config["toolChoice"] = {"any": {}}
        elif choice is not None:
            tool_config["toolChoice"] = {"tool": {"name": choice.function.name}}
        payload["toolConfig"] = tool_config
    return payload


def _tool_spec(function: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": function.name,
        "inputSchema": {"json": function.parameters or {"type": "object", "properties": {}}},
    }
    if function.description:  # Converse rejects an empty description
        spec["description"] = function.description
    return {"toolSpec": spec}


# --- chat response ----------------------------------------------------------------------


def input_tokens(usage: dict[str, Any]) -> int:
    # Cache reads and writes are input tokens too, billed by the same request.
    return sum(int(usage.get(k) or 0) for k in
               ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"))


def finish_reason(stop_reason: str | None, forced: bool) -> str:
    finish = STOP_REASONS.get(stop_reason or "end_turn", "stop")
    return "stop" if forced and finish == "tool_calls" else finish


def from_converse(
    response: dict[str, Any], request: ChatCompletionRequest, model: str
) -> dict[str, Any]:
    """A `chat.completion` from a Converse response (which has no id of its own)."""
    forced = json_tool_name(request)
    texts, calls = [], []
    message = (response.get("output") or {}).get("message") or {}
    for block in message.get("content") or []:
        if "text" in block:
            texts.append(block["text"] or "")
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input", {})).decode()
            if forced:
                texts.append(arguments)
            else:
                calls.append(tool_call(use.get("toolUseId") or new_id("call_"),
                                       use.get("name") or "", arguments))
        # reasoningContent and other blocks have no OpenAI counterpart here
    usage = response.get("usage") or {}
    return completion(
        id=new_id(), model=model,
        content="".join(texts) if texts or not calls else None, tool_calls=calls or None,
        finish_reason=finish_reason(response.get("stopReason"), bool(forced)),
        prompt_tokens=input_tokens(usage), completion_tokens=int(usage.get("outputTokens") or 0),
    )


class ConverseStreamTranslator:
    """Converse stream events to OpenAI chunks, one event at a time.

    `stopped` turns true at `messageStop`; a stream that ends before it was
    cut short, and the caller must raise rather than end normally.
    """

    def __init__(self, request: ChatCompletionRequest, name: str, model: str):
        self.forced = json_tool_name(request)
        self.name = name
        self.chunks = ChunkFactory(new_id(), model)
        self.started = False
        self.stopped = False
        self.tool_index: dict[int, int] = {}

    def feed(self, event: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for kind, status in STREAM_ERRORS.items():
            if kind in event:
                error = event[kind] or {}
                raise UpstreamError(
                    f"{self.name} reported {kind} mid-stream: {error.get('message', '')}"[:400],
                    status=status,
                )
        if not self.started and ("messageStart" in event or "contentBlockStart" in event
                                 or "contentBlockDelta" in event):
            self.started = True
            yield self.chunks.delta({"role": "assistant", "content": ""})
        if "contentBlockStart" in event:
            data = event["contentBlockStart"]
            use = (data.get("start") or {}).get("toolUse")
            if use is not None and not self.forced:
                block = data.get("contentBlockIndex", 0)
                index = self.tool_index[block] = len(self.tool_index)
                yield self.chunks.delta({"tool_calls": [
                    {"index": index, "id": use.get("toolUseId"), "type": "function",
                     "function": {"name": use.get("name"), "arguments": ""}}]})
        elif "contentBlockDelta" in event:
            data = event["contentBlockDelta"]
            delta = data.get("delta") or {}
            if "text" in delta:
                yield self.chunks.delta({"content": delta["text"]})
            elif "toolUse" in delta:
                piece = (delta["toolUse"] or {}).get("input", "")
                if self.forced:
                    yield self.chunks.delta({"content": piece})
                else:
                    index = self.tool_index.get(data.get("contentBlockIndex", 0), 0)
                    yield self.chunks.delta(
                        {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        elif "messageStop" in event:
            self.stopped = True
            reason = (event["messageStop"] or {}).get("stopReason")
            yield self.chunks.delta({}, finish_reason=finish_reason(reason, bool(self.forced)))
        elif "metadata" in event:
            usage = (event["metadata"] or {}).get("usage")
            if usage:
                yield self.chunks.usage(input_tokens(usage), int(usage.get("outputTokens") or 0))


# --- embeddings -------------------------------------------------------------------------


def embedding_family(model: str) -> str:
    """`titan` or `cohere`; other embedding models on Bedrock are refused by name."""
    # Cross-region inference profiles prefix the id with a geography ("us.cohere...").
    bare = model.split("/")[-1]
    parts = bare.split(".")
    vendor_model = ".".join(parts[1:]) if len(parts) > 2 and len(parts[0]) <= 4 else bare
    if vendor_model.startswith("amazon.titan-embed-text"):
        return "titan"
    if vendor_model.startswith("cohere.embed"):
        return "cohere"
    raise InvalidRequest(f"provider bedrock: embedding model {model} is not supported "
                         f"(Amazon Titan text and Cohere embed are)", param="model")


def titan_body(text: str, model: str, dimensions: int | None) -> dict[str, Any]:
    if "titan-embed-text-v1" in model:  # v1 takes neither dimensions nor normalize
        if dimensions is not None:
            raise InvalidRequest(f"model {model} does not support dimensions",
                                 param="dimensions")
        return {"inputText": text}
    body: dict[str, Any] = {"inputText": text, "normalize": True}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def cohere_body(texts: list[str], model: str, dimensions: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"texts": texts, "input_type": "search_document"}
    if dimensions is not None:
        if "embed-v4" not in model:  # v3 vectors have one fixed size
            raise InvalidRequest(f"model {model} does not support dimensions",
                                 param="dimensions")
        body["output_dimension"] = dimensions
    return body


def titan_vector(body: dict[str, Any]) -> list[float]:
    embedding = body.get("embedding")
    if not isinstance(embedding, list):
        raise UpstreamError("Bedrock Titan embedding answer has no embedding")
    return embedding


def cohere_vectors(body: dict[str, Any]) -> list[list[float]]:
    embeddings = body.get("embeddings")
    if isinstance(embeddings, dict):  # asked with embedding_types (v4 answers so too)
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list):
        raise UpstreamError("Bedrock Cohere embedding answer has no float embeddings")
    return embeddings


def embedding_list(vectors: list[list[float]], model: str, tokens: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v}
                 for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
