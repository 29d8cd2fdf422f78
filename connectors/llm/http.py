"""Pooled HTTP to upstreams: one aiohttp session (keep-alive pool) per origin.

aiohttp rather than httpx on this path: measured here, an httpx AsyncClient
call cost about 0.9 ms against 0.37 ms for aiohttp on the same keep-alive
connection to a local server (README, "Why aiohttp for upstream calls").
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from engine.errors import UpstreamError, UpstreamTimeout
from engine.schemas.models import Timeouts


class Upstreams:
    """Sessions keyed by origin, created on first use inside the event loop."""

    def __init__(self, *, keepalive_s: float = 60.0):
        self.keepalive_s = keepalive_s
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, url: str) -> aiohttp.ClientSession:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        session = self._sessions.get(origin)
        if session is None or session.closed:
            # No per-host cap here: deployments cap themselves with bulkheads.
            connector = aiohttp.TCPConnector(
                limit=0, keepalive_timeout=self.keepalive_s, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda v: orjson.dumps(v).decode(),
                auto_decompress=True,
            )
            self._sessions[origin] = session
        return session

    async def aclose(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    # The whole-call deadline is the executor's (it also bounds retries' attempts);
    # here only connect and between-bytes limits.
    return aiohttp.ClientTimeout(
        total=None, sock_connect=timeouts.connect_ms / 1000, sock_read=timeouts.read_ms / 1000
    )


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` in seconds or as a date."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_message(body: bytes) -> str:
    """The message inside an OpenAI, Anthropic or Azure error body, else the text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode(errors="replace").strip() or "no body"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:500]
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:500]
    return str(data)[:300]


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Any
    body: bytes


def upstream_error(name: str, status: int, headers: Any, body: bytes) -> UpstreamError:
    return UpstreamError(
        f"{name} answered {status}: {error_message(body)}",
        status=status,
        retry_after=parse_retry_after(headers),
        code=f"upstream_{status}",
    )


def transport_error(name: str, error: BaseException) -> UpstreamError:
    if isinstance(error, TimeoutError):  # aiohttp's connect/read timeouts
        return UpstreamTimeout(f"{name} timed out: {type(error).__name__}")
    return UpstreamError(f"could not reach {name}: {type(error).__name__}: {error}"[:400])


async def post_json(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any], headers: dict[str, str],
    timeouts: Timeouts, name: str,
) -> UpstreamResponse:
    try:
        async with session.post(
            url, data=orjson.dumps(payload), headers=headers, timeout=client_timeout(timeouts)
        ) as response:
            body = await response.read()
            return UpstreamResponse(response.status, response.headers, body)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise transport_error(name, error) from None


async def sse_events(
    response: aiohttp.ClientResponse, name: str
) -> AsyncIterator[tuple[str | None, str]]:
    """Server-sent events as (event, data) pairs; raises if the connection breaks."""
    event: str | None = None
    data: list[str] = []
    try:
        async for raw in response.content:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = None, []
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line.startswith("event:"):
                event = line[6:].strip()
            # comments (":") and other fields are ignored, as the SSE spec says
        if data:
            yield event, "\n".join(data)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise transport_error(name, error) from None
