"""Per-request context that engine code may read (request id, W3C trace).

The API layer sets it at the edge; outbound calls propagate the trace and
usage records are keyed by the request id.
"""

from __future__ import annotations

import re
import secrets
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class Trace:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> Trace:
        return Trace(self.trace_id, secrets.token_hex(8), self.flags)


def parse_traceparent(header: str | None) -> Trace | None:
    """A new span in the caller's trace, or None if the header is absent or invalid."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if not match:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return Trace(trace_id, secrets.token_hex(8), flags)


def new_trace() -> Trace:
    return Trace(secrets.token_hex(16), secrets.token_hex(8))


def accept_request_id(header: str | None) -> str:
    """The caller's X-Request-ID if it is safe to echo and log, else a new one."""
    if header and _REQUEST_ID.match(header):
        return header
    return str(uuid.uuid4())


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
trace_var: ContextVar[Trace | None] = ContextVar("trace", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def current_trace() -> Trace | None:
    return trace_var.get()
