"""`POST /v1/chat/completions`, streaming (server-sent events) included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from quart import Blueprint, Response, request
from quart_schema import tag

from api.errors import status_and_type
from api.gateway_headers import gateway_headers
from api.jsonio import json_response
from api.operations import accept
from api.state import app_state
from api.validation import json_body, responds, responds_text
from engine.errors import HeadraceError, InvalidRequest
from engine.gateway.executor import Stream
from engine.logs import get_logger
from engine.schemas.chat import ChatCompletionRequest
from engine.schemas.openai_objects import ChatCompletion

blueprint = Blueprint("chat", __name__)
log = get_logger("headrace.chat")

DONE = b"data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def event_stream(stream: Stream, include_usage: bool) -> AsyncIterator[bytes]:
    """Chunks as SSE, then `[DONE]`; a break after the first token ends it with an
    error event (OpenAI's SDKs raise it) and no `[DONE]`."""
    try:
        async for chunk in stream:
            if include_usage:
                yield sse(chunk)
                continue
            # Upstreams are always asked for usage (Headrace accounts for it);
            # a client that did not ask gets OpenAI's shape without it.
            if not chunk.get("choices"):
                continue
            chunk.pop("usage", None)
            yield sse(chunk)
    except HeadraceError as error:
        _, kind = status_and_type(error)
        log.warning("stream broken after the first token", error=error.message)
        yield sse({"error": {"message": error.message, "type": kind, "param": None,
                             "code": error.code or "stream_broken"}})
        return
    yield DONE


@blueprint.post("/v1/chat/completions")
@tag(["Chat"])
@json_body(ChatCompletionRequest)
@responds(200, ChatCompletion)
@responds_text(200, "text/event-stream",
               "With `stream: true`: `chat.completion.chunk` events, then `[DONE]`")
async def chat_completions(body: ChatCompletionRequest) -> Any:
    """Create a chat completion through a model or a chain (OpenAI-compatible).

    A message may reference a stored prompt with `prompt_id` and `variables`
    instead of `content`.
    """
    gateway = app_state().gateway
    if request.args.get("async", "").lower() in ("true", "1"):
        if body.stream:
            raise InvalidRequest("stream and async=true cannot be combined", param="stream")
        gateway.check(body)
        return await accept("chat_completion", body.model_dump(mode="json", exclude_none=True,
                                                               by_alias=True),
                            webhook_url=request.args.get("webhook_url"))
    if body.stream:
        stream = await gateway.stream(body)
        response = Response(event_stream(stream, body.include_usage),
                            mimetype="text/event-stream", headers=gateway_headers(stream.report))
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        response.timeout = None  # streams may outlive Quart's response timeout
        return response
    completion, report = await gateway.complete(body)
    return json_response(completion, headers=gateway_headers(report))
