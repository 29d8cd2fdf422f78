"""OpenAI, and any server speaking its API (vLLM, Ollama, llama.cpp, LM Studio).

The request is already OpenAI's, so it goes through nearly as it came: the
upstream model name replaces the client's, Headrace's own fields are dropped,
and streams always ask for usage (forwarded to the client only if it asked).
"""

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
from engine.gateway.providers import Call
from engine.schemas.chat import ChatCompletionRequest, EmbeddingRequest

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Fields Headrace understands itself; they never go upstream.
_LOCAL_FIELDS = {"max_output_tokens", "end_user", "tags"}
_CLIENT_REJECTS = frozenset({400, 413, 422})


def chat_payload(request: ChatCompletionRequest, model: str, *, stream: bool) -> dict[str, Any]:
    payload = request.model_dump(exclude_none=True, exclude=_LOCAL_FIELDS, by_alias=True)
    payload["model"] = model
    for message in payload["messages"]:
        for key in ("prompt_id", "prompt_version", "variables", "annotations", "audio"):
            message.pop(key, None)
    payload["stream"] = stream
    if stream:
        payload["stream_options"] = {"include_usage": True}
    else:
        payload.pop("stream_options", None)
    return payload


class OpenAIProvider:
    name = "OpenAI"

    def __init__(self, upstreams: Upstreams, *, default_base_url: str | None = OPENAI_BASE_URL):
        self.upstreams = upstreams
        self.default_base_url = default_base_url

    # --- wire details that Azure overrides -----------------------------------------------

    def url(self, call: Call, operation: str) -> str:
        base = (call.deployment.base_url or self.default_base_url or "").rstrip("/")
        return f"{base}/{operation}"

    def headers(self, call: Call) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if call.secret:
            headers["Authorization"] = f"Bearer {call.secret}"
        if call.traceparent:
            headers["traceparent"] = call.traceparent
        return headers

    def describe(self, call: Call) -> str:
        return f"{self.name} deployment '{call.deployment.key}'"

    # --- calls --------------------------------------------------------------------------

    async def _post(self, call: Call, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.url(call, operation)
        name = self.describe(call)
        response = await post_json(
            self.upstreams.session(url), url, payload, self.headers(call),
            call.deployment.timeouts, name,
        )
        if response.status >= 400:
            raise self._error(name, response.status, response.headers, response.body)
        try:
            return orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{name} returned a body that is not JSON") from None

    def _error(self, name: str, status: int, headers: Any, body: bytes) -> Exception:
        error = upstream_error(name, status, headers, body)
        if status in _CLIENT_REJECTS:
            return InvalidRequest(f"upstream rejected the request: {error.message}",
                                  code="upstream_rejected")
        return error

    async def complete(self, call: Call, request: ChatCompletionRequest) -> dict[str, Any]:
        payload = chat_payload(request, call.deployment.model, stream=False)
        return await self._post(call, "chat/completions", payload)

    async def stream(
        self, call: Call, request: ChatCompletionRequest
    ) -> AsyncIterator[dict[str, Any]]:
        payload = chat_payload(request, call.deployment.model, stream=True)
        url = self.url(call, "chat/completions")
        name = self.describe(call)
        session = self.upstreams.session(url)
        try:
            response = await session.post(
                url, data=orjson.dumps(payload), headers=self.headers(call),
                timeout=client_timeout(call.deployment.timeouts),
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise transport_error(name, error) from None
        done = False
        try:
            if response.status >= 400:
                raise self._error(name, response.status, response.headers, await response.read())
            async for _event, data in sse_events(response, name):
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise UpstreamError(f"{name} sent a malformed stream chunk") from None
                if "error" in chunk and "choices" not in chunk:
                    raise UpstreamError(f"{name} reported an error mid-stream: "
                                        f"{str(chunk['error'])[:300]}")
                yield chunk
            if not done:
                raise UpstreamError(f"{name} ended the stream before [DONE]")
        finally:
            response.release() if done else response.close()

    async def embed(self, call: Call, request: EmbeddingRequest) -> dict[str, Any]:
        payload = request.model_dump(exclude_none=True)
        payload["model"] = call.deployment.model
        payload["encoding_format"] = "float"  # the API layer encodes base64 itself
        return await self._post(call, "embeddings", payload)

    async def aclose(self) -> None:
        await self.upstreams.aclose()


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI: deployment routes, `api-version`, and the `api-key` header."""

    name = "Azure OpenAI"

    def __init__(self, upstreams: Upstreams):
        super().__init__(upstreams, default_base_url=None)

    def url(self, call: Call, operation: str) -> str:
        d = call.deployment
        base = (d.base_url or "").rstrip("/")
        return f"{base}/openai/deployments/{d.model}/{operation}?api-version={d.api_version}"

    def headers(self, call: Call) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if call.secret:
            headers["api-key"] = call.secret
        if call.traceparent:
            headers["traceparent"] = call.traceparent
        return headers
