"""Anthropic's Messages API (`POST /v1/messages`), streaming included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from connectors.llm.http import (
    Upstreams,
    client_timeout,
    post_json,
    sse_events,
    transport_error,
    upstream_error,
)
from engine.errors import InvalidRequest, UpstreamError
from engine.formats.anthropic import StreamTranslator, from_anthropic, to_anthropic
from engine.gateway.providers import Call
from engine.schemas.chat import ChatCompletionRequest, EmbeddingRequest

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicProvider:
    def __init__(self, upstreams: Upstreams):
        self.upstreams = upstreams

    def _url(self, call: Call) -> str:
        return f"{(call.deployment.base_url or ANTHROPIC_BASE_URL).rstrip('/')}/v1/messages"

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION}
        if call.secret:
            headers["x-api-key"] = call.secret
        if call.traceparent:
            headers["traceparent"] = call.traceparent
        return headers

    @staticmethod
    def _name(call: Call) -> str:
        return f"Anthropic deployment '{call.deployment.key}'"

    @staticmethod
    def _error(name: str, status: int, headers: Any, body: bytes) -> Exception:
        error = upstream_error(name, status, headers, body)
        if status in (400, 413, 422):
            return InvalidRequest(f"upstream rejected the request: {error.message}",
                                  code="upstream_rejected")
        return error

    async def complete(self, call: Call, request: ChatCompletionRequest) -> dict[str, Any]:
        payload = to_anthropic(request, call.deployment.model)
        url, name = self._url(call), self._name(call)
        response = await post_json(self.upstreams.session(url), url, payload,
                                   self._headers(call), call.deployment.timeouts, name)
        if response.status >= 400:
            raise self._error(name, response.status, response.headers, response.body)
        try:
            message = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{name} returned a body that is not JSON") from None
        return from_anthropic(message, request)

    async def stream(
        self, call: Call, request: ChatCompletionRequest
    ) -> AsyncIterator[dict[str, Any]]:
        payload = to_anthropic(request, call.deployment.model)
        payload["stream"] = True
        url, name = self._url(call), self._name(call)
        try:
            response = await self.upstreams.session(url).post(
                url, data=orjson.dumps(payload), headers=self._headers(call),
                timeout=client_timeout(call.deployment.timeouts),
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise transport_error(name, error) from None
        translator = StreamTranslator(request, name)
        stopped = False
        try:
            if response.status >= 400:
                raise self._error(name, response.status, response.headers, await response.read())
            async for event, data in sse_events(response, name):
                try:
                    parsed = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise UpstreamError(f"{name} sent a malformed stream event") from None
                for chunk in translator.feed(event, parsed):
                    yield chunk
                if (parsed.get("type") or event) == "message_stop":
                    stopped = True
                    break
            if not stopped:
                raise UpstreamError(f"{name} ended the stream before message_stop")
        finally:
            response.release() if stopped else response.close()

    async def embed(self, call: Call, request: EmbeddingRequest) -> dict[str, Any]:
        raise InvalidRequest("provider anthropic offers no embedding models", param="model")

    async def aclose(self) -> None:
        await self.upstreams.aclose()
