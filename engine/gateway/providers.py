"""What the gateway needs from a provider connector.

Requests and responses cross this boundary in OpenAI's shapes: a connector
translates the validated `ChatCompletionRequest` to its vendor's wire format
and the vendor's answer back to OpenAI `chat.completion` / `chat.completion.chunk`
/ embedding-list dicts. A connector raises `InvalidRequest` for parameters its
vendor cannot honour (before calling), and `UpstreamError` / `UpstreamTimeout`
for failures, with the upstream status and any Retry-After.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import InvalidRequest
from engine.schemas.chat import ChatCompletionRequest, EmbeddingRequest
from engine.schemas.models import ResolvedDeployment


@dataclass(frozen=True, slots=True)
class Call:
    """One attempt against one deployment."""

    deployment: ResolvedDeployment
    secret: str | None
    timeout_s: float  # for the whole call (streams: for the first token)
    traceparent: str | None = None


class ChatProvider(Protocol):
    async def complete(self, call: Call, request: ChatCompletionRequest) -> dict[str, Any]:
        """A `chat.completion` object."""

    def stream(self, call: Call, request: ChatCompletionRequest) -> AsyncIterator[dict[str, Any]]:
        """`chat.completion.chunk` objects; the last carries `usage` when known.

        Ends normally only when the upstream finished the stream; a dropped or
        malformed stream raises UpstreamError.
        """

    async def embed(self, call: Call, request: EmbeddingRequest) -> dict[str, Any]:
        """An embedding `list` object (float vectors; the API encodes base64)."""

    async def aclose(self) -> None: ...


def _is_set(request: ChatCompletionRequest, field: str) -> bool:
    value = getattr(request, field)
    if field == "n":
        return value is not None and value > 1
    return value not in (None, False)


def unsupported(provider: str, request: ChatCompletionRequest, fields: tuple[str, ...]) -> None:
    """Refuse parameters a provider cannot honour, naming them (no silent loss)."""
    given = [f for f in fields if _is_set(request, f)]
    if given:
        raise InvalidRequest(
            f"provider {provider} does not support parameter"
            f"{'s' if len(given) > 1 else ''} {', '.join(given)}",
            param=given[0],
            code="unsupported_parameter",
        )
