"""A fake StepServices for workflow tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from engine.schemas.chat import ChatCompletionRequest
from engine.schemas.knowledge import SearchRequest


def completion(content: str, model: str = "mock") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            "cost": 0.001}


class FakeServices:
    def __init__(self, reply: str | Callable[[ChatCompletionRequest], str] = "hello",
                 documents: list[dict[str, Any]] | None = None, chat_delay: float = 0.0,
                 search_delay: float = 0.0, judge: dict[str, float] | None = None):
        self.reply = reply
        self.documents = documents or []
        self.chat_delay = chat_delay
        self.search_delay = search_delay
        self.judge = judge or {}
        self.chat_requests: list[ChatCompletionRequest] = []
        self.search_requests: list[tuple[str, SearchRequest]] = []
        self.failures_left = 0

    async def chat(self, request: ChatCompletionRequest) -> dict[str, Any]:
        self.chat_requests.append(request)
        if self.chat_delay:
            await asyncio.sleep(self.chat_delay)
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("upstream flaked")
        if request.response_format and request.response_format.json_schema and \
                request.response_format.json_schema.name == "relevance":
            text = request.messages[-1].text()
            document = text.split("Document:\n", 1)[1]
            relevance = self.judge.get(document, 0.0)
            return completion(json.dumps({"relevance": relevance, "reason": f"judged {relevance}"}))
        content = self.reply(request) if callable(self.reply) else self.reply
        return completion(content, request.model)

    async def search(self, kb_id: str, request: SearchRequest) -> list[dict[str, Any]]:
        self.search_requests.append((kb_id, request))
        if self.search_delay:
            await asyncio.sleep(self.search_delay)
        return [dict(d) for d in self.documents[:request.top_k]]


def doc(content: str, score: float, i: int = 0) -> dict[str, Any]:
    return {"id": f"c{i}", "document_id": f"d{i}", "content": content, "score": score,
            "metadata": {"i": i}, "chunk_index": 0}
