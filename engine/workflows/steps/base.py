"""What a step implementation sees: the injected services and a per-run context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.schemas.chat import ChatCompletionRequest
from engine.schemas.knowledge import SearchRequest
from engine.workflows.references import Scope


class StepServices(Protocol):
    """The gateway and the knowledge bases, as the steps call them."""

    async def chat(self, request: ChatCompletionRequest) -> dict[str, Any]:
        """A `chat.completion` object (with `usage`; optionally `cost`)."""
        ...

    async def search(self, kb_id: str, request: SearchRequest) -> list[dict[str, Any]]:
        """Documents: {id, document_id, content, score, metadata, chunk_index}."""
        ...


@dataclass(slots=True)
class StepContext:
    """Per step run. A runner sets `input` to what it received once its references
    are resolved (the executor records it, bounded, as the step's `input`), before
    anything that may fail, so a failed step shows it too."""

    scope: Scope
    services: Any
    allow_private_http: bool = False
    emit_delta: Callable[[str], Awaitable[None]] | None = None
    tokens: int = 0
    cost: float | None = None
    warnings: list[str] = field(default_factory=list)
    input: Any = None

    def add_usage(self, response: dict[str, Any]) -> None:
        usage = response.get("usage") or {}
        self.tokens += int(usage.get("total_tokens") or 0)
        cost = response.get("cost", usage.get("cost"))
        if cost is not None:
            self.cost = (self.cost or 0.0) + float(cost)

    def require_services(self) -> Any:
        if self.services is None:
            raise RuntimeError("this step needs StepServices; the executor has none")
        return self.services


StepRunner = Callable[[StepContext], Awaitable[Any]]
