"""The one place where errors become HTTP responses.

Every error leaves Headrace as OpenAI's body
`{"error": {"message", "type", "param", "code"}}`: engine errors, framework
errors (unknown route, bad method, oversize body) and unexpected exceptions
alike, so clients never see an HTML page or a traceback.
"""

from __future__ import annotations

import math

import orjson
from pydantic import BaseModel, Field
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from engine import errors as e
from engine.logs import get_logger

log = get_logger("headrace.errors")

# (status, OpenAI error type), most specific class first: the first match wins.
_MAPPING: list[tuple[type[e.HeadraceError], int, str]] = [
    (e.UnsupportedMediaType, 415, "invalid_request_error"),
    (e.PayloadTooLarge, 413, "invalid_request_error"),
    (e.MethodNotAllowed, 405, "invalid_request_error"),
    (e.InvalidRequest, 400, "invalid_request_error"),
    (e.AuthenticationFailed, 401, "authentication_error"),
    (e.PermissionDenied, 403, "permission_error"),
    (e.NotFound, 404, "not_found_error"),
    (e.Conflict, 409, "invalid_request_error"),
    (e.BudgetExceeded, 429, "insufficient_quota"),
    (e.RateLimited, 429, "rate_limit_error"),
    (e.UpstreamTimeout, 504, "api_error"),
    (e.UpstreamError, 502, "api_error"),
    (e.ServiceUnavailable, 503, "api_error"),
    (e.ConfigurationError, 500, "api_error"),
    (e.HeadraceError, 500, "api_error"),
]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """An error, in OpenAI's format."""

    error: ErrorDetail = Field(description="What went wrong")


def status_and_type(error: e.HeadraceError) -> tuple[int, str]:
    if isinstance(error, e.UpstreamError) and error.status in (429, 503):
        # The upstream's own rate limit or outage, after retries and fallbacks:
        # pass its meaning on so clients back off the way they already know.
        return error.status, "rate_limit_error" if error.status == 429 else "api_error"
    for cls, status, kind in _MAPPING:
        if isinstance(error, cls):
            return status, kind
    return 500, "api_error"


def error_response(
    status: int,
    message: str,
    kind: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return Response(
        orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def response_for(error: e.HeadraceError) -> Response:
    status, kind = status_and_type(error)
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    extra = getattr(error, "headers", None)
    if extra:
        headers.update(extra)
    return error_response(
        status, error.message, kind, param=error.param, code=error.code, headers=headers
    )


def _from_http_exception(exc: HTTPException) -> e.HeadraceError:
    status = exc.code or 500
    if status == 404:
        return e.NotFound(
            f"Unknown route: {request.method} {request.path}", code="unknown_route"
        )
    if status == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
        return e.MethodNotAllowed(
            f"Method {request.method} is not allowed on {request.path}"
            + (f" (allowed: {allowed})" if allowed else "")
        )
    if status == 413:
        limit = request.max_content_length
        return e.PayloadTooLarge(
            "Request body is too large" + (f" (limit: {limit} bytes)" if limit else "")
        )
    if status == 415:
        return e.UnsupportedMediaType(exc.description or "Unsupported media type")
    if status == 400:
        return e.InvalidRequest(exc.description or "Bad request", code="bad_request")
    if status < 500:
        return e.InvalidRequest(exc.description or exc.name)
    return e.HeadraceError(exc.description or exc.name)


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(e.HeadraceError)
    async def _headrace_error(error: e.HeadraceError) -> Response:
        if status_and_type(error)[0] >= 500:
            log.warning("request failed", error=error.message, code=error.code)
        return response_for(error)

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        response = response_for(_from_http_exception(exc))
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(
            500,
            "The server hit an internal error; the request id in X-Request-ID identifies it "
            "in the logs.",
            "api_error",
            code="internal_error",
        )
