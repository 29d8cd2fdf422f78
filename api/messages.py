"""`POST /v1/messages`: Anthropic's Messages API, served by the chat gateway.

Lets Anthropic-SDK clients use Headrace unchanged (`base_url` pointed here).
The request is translated into a chat completion
(`engine.formats.anthropic_inbound`); the answer, the stream events and every
error on this route take Anthropic's shapes. Errors are caught by handlers on
this blueprint, which take precedence over the app's OpenAI-shaped ones and
also see validation errors (raised inside the view by `json_body`).
`anthropic-version` is accepted and ignored; `x-api-key` is accepted.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from quart import Blueprint, Response
from quart_schema import tag
from werkzeug.exceptions import HTTPException

from api.errors import _from_http_exception, status_and_type
from api.responses import serve_translated
from api.validation import json_body, responds, responds_text
from engine.errors import HeadraceError
from engine.formats.anthropic_inbound import MessageStream, error_body, from_completion, to_chat
from engine.logs import get_logger
from engine.schemas.messages_api import AnthropicError, MessageObject, MessagesRequest

blueprint = Blueprint("messages", __name__)
log = get_logger("headrace.messages")

_ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 415, 429, 500, 502, 503, 504)


def anthropic_error(error: HeadraceError) -> Response:
    status, _ = status_and_type(error)
    if status >= 500:
        log.warning("request failed", error=error.message, code=error.code)
    response = Response(orjson.dumps(error_body(status, error.message)), status=status,
                        content_type="application/json")
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    response.headers.update(getattr(error, "headers", None) or {})
    return response


@blueprint.errorhandler(HeadraceError)
async def _headrace_error(error: HeadraceError) -> Response:
    return anthropic_error(error)


@blueprint.errorhandler(HTTPException)
async def _http_error(exc: HTTPException) -> Response:
    # e.g. a body over the size limit, detected while the view reads it
    return anthropic_error(_from_http_exception(exc))


@blueprint.errorhandler(Exception)
async def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return anthropic_error(HeadraceError(
        "The server hit an internal error; the request id in X-Request-ID identifies it "
        "in the logs."))


def _documented(func: Any) -> Any:
    for status in _ERROR_STATUSES:
        func = responds(status, AnthropicError)(func)
    return func


@blueprint.post("/v1/messages")
@tag(["Chat"])
@json_body(MessagesRequest)
@responds(200, MessageObject)
@responds_text(200, "text/event-stream",
               "With `stream: true`: Anthropic events (`message_start` ... `message_stop`)")
@_documented
async def create_message(body: MessagesRequest) -> Any:
    """Create a message (Anthropic Messages API) through a model or a chain.

    Errors use Anthropic's shape `{"type": "error", "error": {"type", "message"}}`.
    `top_k` and server tools are refused: chat completions cannot express them.
    """
    return await serve_translated(to_chat(body), body.stream, "messages",
                                  lambda: MessageStream(body),
                                  lambda completion: from_completion(completion, body))
