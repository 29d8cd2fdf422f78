"""`POST /v1/responses`: OpenAI's Responses API, served by the chat gateway.

The request is translated into a chat completion (`engine.formats.responses`),
so routing, retries, fallbacks and the `x-headrace-*` headers are the same as
on `/v1/chat/completions`. Streams use the Responses event protocol: named SSE
events with a `sequence_number`, ending in `response.completed`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

import orjson
from quart import Blueprint, Response
from quart_schema import tag

from api.errors import status_and_type
from api.gateway_headers import gateway_headers
from api.jsonio import json_response
from api.state import app_state
from api.validation import json_body, responds, responds_text
from engine.errors import HeadraceError
from engine.formats.responses import Event, ResponseStream, from_completion, to_chat
from engine.gateway.executor import Stream
from engine.logs import get_logger
from engine.schemas.chat import ChatCompletionRequest
from engine.schemas.responses_api import ResponseObject, ResponsesRequest

blueprint = Blueprint("responses", __name__)
log = get_logger("headrace.responses")


class EventWriter(Protocol):
    """Chat chunks to one API's stream events (`ResponseStream`, `MessageStream`)."""

    def start(self) -> Iterator[Event]: ...
    def feed(self, chunk: dict[str, Any]) -> Iterator[Event]: ...
    def finish(self) -> Iterator[Event]: ...
    def fail(self, message: str, status: int) -> Iterator[Event]: ...


def sse_event(event: Event) -> bytes:
    kind, data = event
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def event_stream_response(events: AsyncIterator[bytes], headers: dict[str, str]) -> Response:
    """A streaming SSE response that proxies and Quart's timeout leave alone."""
    response = Response(events, mimetype="text/event-stream", headers=headers)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None  # streams may outlive Quart's response timeout
    return response


async def serve_translated(
    request: ChatCompletionRequest, stream: bool, kind: str,
    writer: Callable[[], EventWriter], translate: Callable[[dict[str, Any]], dict[str, Any]],
) -> Any:
    """Serve another API's request through the chat gateway: `request` is it in
    chat's shape; `writer` turns chunks into its stream events, `translate` turns
    a completion into its answer."""
    gateway = app_state().gateway
    if stream:
        chunks = await gateway.stream(request, kind=kind)
        return event_stream_response(event_stream(chunks, writer()),
                                     gateway_headers(chunks.report))
    completion, report = await gateway.complete(request, kind=kind)
    return json_response(translate(completion), headers=gateway_headers(report))


async def event_stream(stream: Stream, writer: EventWriter) -> AsyncIterator[bytes]:
    """Chat chunks as named SSE events; a break after the first token ends the
    stream with the writer's failure events (Responses: `error` and
    `response.failed`; Messages: `error`) instead of its closing ones."""
    for event in writer.start():
        yield sse_event(event)
    try:
        async for chunk in stream:
            for event in writer.feed(chunk):
                yield sse_event(event)
    except HeadraceError as error:
        status, _ = status_and_type(error)
        log.warning("stream broken after the first token", error=error.message)
        for event in writer.fail(error.message, status):
            yield sse_event(event)
        return
    for event in writer.finish():
        yield sse_event(event)


@blueprint.post("/v1/responses")
@tag(["Chat"])
@json_body(ResponsesRequest)
@responds(200, ResponseObject)
@responds_text(200, "text/event-stream",
               "With `stream: true`: Responses events (`response.created` ... "
               "`response.completed`)")
async def create_response(body: ResponsesRequest) -> Any:
    """Create a model response (OpenAI Responses API) through a model or a chain.

    Stateless: `store` is accepted but nothing is stored, so
    `previous_response_id` is refused; send the conversation in `input`.
    Only function tools are supported.
    """
    return await serve_translated(to_chat(body), body.stream, "responses",
                                  lambda: ResponseStream(body),
                                  lambda completion: from_completion(completion, body))
