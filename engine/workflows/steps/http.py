"""`http_request` step: method, URL, headers and body templated.

The same SSRF protection as ingestion (`connectors.web`): http(s) only,
literal internal addresses refused, and the connection's own resolver refuses
names resolving to internal addresses (also on redirects). Output: {"status",
"headers", "body" (text), "json" (parsed when the body is JSON, else None)}.

Input (recorded): {"method", "url", "headers", "body" (None when not sent)},
with secret-looking header values (Authorization, API keys, tokens, cookies,
`Bearer ...` values), URL passwords, secret query parameters and the values of
secret-looking keys of a JSON body replaced by `[redacted]`.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from connectors.web import BlockedAddress, SafeResolver, is_internal
from engine.errors import InvalidRequest, UpstreamError
from engine.workflows.references import compile_value
from engine.workflows.schema import HttpRequestStep
from engine.workflows.steps.base import StepContext, StepRunner
from engine.workflows.trace import redact_headers, redact_keys, redact_url

DEFAULT_TIMEOUT_S = 30.0


def check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"url must be http(s) with a host: {redact_url(url)[:200]}",
                             param="url")
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return
    if is_internal(str(literal)):
        raise InvalidRequest(f"url points at an internal address ({parts.hostname})",
                             param="url", code="url_not_allowed")


def compile_step(step: HttpRequestStep) -> StepRunner:
    url_value = compile_value(step.url)
    headers_value = compile_value(step.headers)
    body_value = compile_value(step.body)
    timeout_s = step.timeout_ms / 1000 if step.timeout_ms else DEFAULT_TIMEOUT_S
    max_bytes = step.max_response_bytes

    async def run(ctx: StepContext) -> dict[str, Any]:
        url = str(url_value.render(ctx.scope))
        headers = {k: str(v) for k, v in headers_value.render(ctx.scope).items()}
        body = body_value.render(ctx.scope)
        sends_body = body is not None and step.method not in ("GET", "HEAD")
        ctx.input = {"method": step.method, "url": redact_url(url),
                     "headers": redact_headers(headers),
                     "body": redact_keys(body) if sends_body else None}
        check_url(url, ctx.allow_private_http)
        kwargs: dict[str, Any] = {"headers": headers, "max_redirects": 5}
        if sends_body:
            if isinstance(body, str | bytes):
                kwargs["data"] = body
            else:
                kwargs["json"] = body
        connector = aiohttp.TCPConnector(
            resolver=None if ctx.allow_private_http else SafeResolver())
        try:
            async with aiohttp.ClientSession(
                    connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
                async with session.request(step.method, url, **kwargs) as response:
                    data = bytearray()
                    async for piece in response.content.iter_chunked(65_536):
                        data += piece
                        if len(data) > max_bytes:
                            raise UpstreamError(f"response larger than {max_bytes} bytes")
                    status = response.status
                    response_headers = dict(response.headers)
        except BlockedAddress as error:
            raise InvalidRequest(f"url not allowed: {error}", param="url",
                                 code="url_not_allowed") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UpstreamError(f"request to {redact_url(url)[:200]} failed: "
                                f"{type(error).__name__}: {error}"[:400]) from None
        text = data.decode("utf-8", errors="replace")
        parsed = None
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        if step.fail_on_error_status and status >= 400:
            raise UpstreamError(f"{step.method} {redact_url(url)[:200]} answered {status}",
                                status=status)
        return {"status": status, "headers": response_headers, "body": text, "json": parsed}

    return run
