"""What every request gets: a request id, a trace, metrics and an access log line."""

from __future__ import annotations

import time

import structlog
from quart import Quart, Response, g, request

from engine import metrics
from engine.context import (
    accept_request_id,
    new_trace,
    parse_traceparent,
    request_id_var,
    trace_var,
)
from engine.errors import PayloadTooLarge
from engine.logs import get_logger

access_log = get_logger("headrace.access")


def install_request_context(app: Quart, *, access_log_enabled: bool = True) -> None:
    @app.before_request
    async def _start() -> None:
        g.started = time.perf_counter()
        request_id = accept_request_id(request.headers.get("X-Request-ID"))
        trace = parse_traceparent(request.headers.get("traceparent")) or new_trace()
        g.request_id, g.trace = request_id, trace
        request_id_var.set(request_id)
        trace_var.set(trace)
        structlog.contextvars.bind_contextvars(request_id=request_id, trace_id=trace.trace_id)
        metrics.http_in_flight.inc()
        g.in_flight = True
        # Refuse an announced oversize body before routing or reading it; bodies
        # without a length are capped while they are read.
        limit = request.max_content_length
        if limit is not None and (request.content_length or 0) > limit:
            raise PayloadTooLarge(f"Request body is too large (limit: {limit} bytes)")

    @app.after_request
    async def _finish(response: Response) -> Response:
        started = g.get("started")
        if started is None:  # the request failed before _start ran
            request_id = accept_request_id(request.headers.get("X-Request-ID"))
            trace = parse_traceparent(request.headers.get("traceparent")) or new_trace()
            g.request_id, g.trace = request_id, trace
            started = time.perf_counter()
        response.headers["X-Request-ID"] = g.request_id
        response.headers["traceparent"] = g.trace.traceparent
        elapsed = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule else "unmatched"
        status = str(response.status_code)
        metrics.http_requests.labels(request.method, route, status).inc()
        metrics.http_latency.labels(request.method, route, status).observe(elapsed)
        if access_log_enabled:
            access_log.info(
                "request",
                method=request.method,
                path=request.path,
                route=route,
                status=response.status_code,
                duration_ms=round(elapsed * 1000, 3),
            )
        return response

    @app.teardown_request
    async def _teardown(_exc: BaseException | None) -> None:
        if g.pop("in_flight", False):
            metrics.http_in_flight.dec()
