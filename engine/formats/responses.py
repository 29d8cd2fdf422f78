"""OpenAI's Responses API onto the chat gateway: requests in, `response` objects out.

Headrace keeps no conversation state, so a request is translated into one
self-contained chat completion (`instructions` become the system message,
`function_call` / `function_call_output` items become tool calls and tool
messages) and the answer is shaped back into output items. What cannot be
expressed as a chat completion (hosted tools, stored responses, file ids) is
refused by name rather than silently dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from engine.errors import NotSupported, UpstreamError
from engine.formats.openai import new_id
from engine.schemas.chat import ChatCompletionRequest
from engine.schemas.responses_api import (
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputImage,
    MessageItem,
    Refusal,
    ResponsesRequest,
)
from engine.validation import invalid_from

Event = tuple[str, dict[str, Any]]  # (event type, data)

# finish_reason -> the reason a response is incomplete
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


# --- requests -----------------------------------------------------------------------------


def _message(item: MessageItem, where: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(item.content):
        if not isinstance(part, InputImage):
            text = part.refusal if isinstance(part, Refusal) else part.text
            parts.append({"type": "text", "text": text})
        elif item.role != "user":
            raise NotSupported(f"input_image is only supported in user messages, not "
                               f"{item.role}", param=f"{where}.content[{index}]")
        elif part.image_url is None:
            raise NotSupported("input_image needs image_url; Headrace stores no files, so "
                               "file_id is not supported", param=f"{where}.content[{index}]")
        else:
            image = {"url": part.image_url, **({"detail": part.detail} if part.detail else {})}
            parts.append({"type": "image_url", "image_url": image})
    if all(p["type"] == "text" for p in parts):  # plain text travels best as a string
        return {"role": item.role, "content": "".join(p["text"] for p in parts)}
    return {"role": item.role, "content": parts}


def to_chat(body: ResponsesRequest) -> ChatCompletionRequest:
    """The chat completion that serves a Responses request."""
    if body.previous_response_id is not None:
        raise NotSupported("previous_response_id is not supported: Headrace does not store "
                           "responses; send the whole conversation in input",
                           param="previous_response_id")
    for index, tool in enumerate(body.tools or ()):
        if not isinstance(tool, FunctionTool):
            raise NotSupported(f"tool type '{tool.type}' is not supported by Headrace; "
                               "only function tools are", param=f"tools[{index}].type")

    messages: list[dict[str, Any]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    for index, item in enumerate(body.input):
        where = f"input[{index}]"
        if isinstance(item, MessageItem):
            messages.append(_message(item, where))
        elif isinstance(item, FunctionCallItem):
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)  # parallel calls, one turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "tool", "tool_call_id": item.call_id,
                             "content": "".join(p.text for p in item.output)})

    chat: dict[str, Any] = {"model": body.model, "messages": messages, "stream": body.stream}
    for name in ("temperature", "top_p", "parallel_tool_calls", "metadata", "user"):
        if (value := getattr(body, name)) is not None:
            chat[name] = value
    if body.max_output_tokens is not None:
        chat["max_tokens"] = body.max_output_tokens
    if body.tools:
        chat["tools"] = [{"type": "function", "function": tool.model_dump(
            exclude={"type"}, exclude_none=True)} for tool in body.tools]
    if body.tool_choice is not None:
        choice = body.tool_choice
        chat["tool_choice"] = choice if isinstance(choice, str) else {
            "type": "function", "function": {"name": choice.name}}
    fmt = body.text.format if body.text else None
    if fmt is not None and fmt.type == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": fmt.model_dump(
            exclude={"type"}, exclude_none=True, by_alias=True)}
    elif fmt is not None:
        chat["response_format"] = {"type": fmt.type}
    try:
        return ChatCompletionRequest.model_validate(chat)
    except ValidationError as error:  # a chat-level rule (e.g. tool_choice needs tools)
        raise invalid_from(error) from None


# --- responses ----------------------------------------------------------------------------


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {"input_tokens": prompt, "output_tokens": completion,
            "total_tokens": prompt + completion,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": reasoning}}


def _usage_from(chat_usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not chat_usage:
        return None
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return usage(int(chat_usage.get("prompt_tokens") or 0),
                 int(chat_usage.get("completion_tokens") or 0), int(cached), int(reasoning))


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def message_item(id: str, parts: list[dict[str, Any]], status: str = "completed"
                 ) -> dict[str, Any]:
    return {"type": "message", "id": id, "status": status, "role": "assistant",
            "content": parts}


def function_item(id: str, call_id: str, name: str, arguments: str,
                  status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def response_object(body: ResponsesRequest, *, id: str, created_at: int, status: str,
                    output: list[dict[str, Any]], usage: dict[str, Any] | None,
                    finish_reason: str | None = None,
                    error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `response` object, echoing the request's settings as OpenAI does."""
    incomplete = INCOMPLETE.get(finish_reason or "") if status == "completed" else None
    status = "incomplete" if incomplete else status
    choice = body.tool_choice or "auto"
    fmt = body.text.format if body.text else None
    return {
        "id": id, "object": "response", "created_at": created_at, "status": status,
        "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
        "model": body.model, "output": output,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": None,
        "temperature": body.temperature, "top_p": body.top_p,
        "text": {"format": fmt.model_dump(exclude_none=True, by_alias=True)
                 if fmt else {"type": "text"}},
        "tool_choice": choice if isinstance(choice, str) else choice.model_dump(),
        "tools": [t.model_dump(exclude_none=True) for t in body.tools or ()],
        "store": False, "user": body.user, "metadata": body.metadata or {},
        "usage": usage,
    }


def from_completion(completion: dict[str, Any], body: ResponsesRequest) -> dict[str, Any]:
    choices = completion.get("choices") or []
    if not choices:
        raise UpstreamError("the upstream answered with no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    calls = message.get("tool_calls") or []
    output: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal") or ""
    if text or not calls:
        status = "incomplete" if choice.get("finish_reason") in INCOMPLETE else "completed"
        output.append(message_item(new_id("msg_"), [text_part(text)], status))
    for call in calls:
        function = call.get("function") or {}
        output.append(function_item(new_id("fc_"), call.get("id") or new_id("call_"),
                                    function.get("name") or "", function.get("arguments") or ""))
    return response_object(
        body, id=new_id("resp_"), created_at=int(completion.get("created") or time.time()),
        status="completed", output=output, usage=_usage_from(completion.get("usage")),
        finish_reason=choice.get("finish_reason"),
    )


class ResponseStream:
    """`chat.completion.chunk` dicts to Responses stream events, one chunk at a time.

    Items stay open until the chat stream ends (a message and any function
    calls may arrive in either order), then close in output order; the final
    `response.completed` carries the whole response, usage included.
    """

    def __init__(self, body: ResponsesRequest):
        self.body = body
        self.id = new_id("resp_")
        self.created_at = int(time.time())
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.text = ""
        self.text_index: int | None = None  # output index of the message item
        self.tools: dict[int, int] = {}  # chat tool_call index -> output index
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def _event(self, kind: str, **data: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return kind, event

    def _response(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return response_object(
            self.body, id=self.id, created_at=self.created_at, status=status,
            output=[dict(item) for item in self.output], usage=self.usage,
            finish_reason=self.finish_reason if status == "completed" else None, error=error,
        )

    def start(self) -> Iterator[Event]:
        response = self._response("in_progress")
        yield self._event("response.created", response=response)
        yield self._event("response.in_progress", response=response)

    def feed(self, chunk: dict[str, Any]) -> Iterator[Event]:
        if chunk.get("usage"):
            self.usage = _usage_from(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if text := delta.get("content") or delta.get("refusal"):
                yield from self._text(text)
            for call in delta.get("tool_calls") or ():
                yield from self._tool(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _open_message(self) -> Iterator[Event]:
        item = message_item(new_id("msg_"), [], "in_progress")
        self.text_index = len(self.output)
        self.output.append(item)
        yield self._event("response.output_item.added", output_index=self.text_index,
                          item=dict(item))
        yield self._event("response.content_part.added", item_id=item["id"],
                          output_index=self.text_index, content_index=0, part=text_part(""))

    def _text(self, text: str) -> Iterator[Event]:
        if self.text_index is None:
            yield from self._open_message()
        assert self.text_index is not None
        self.text += text
        yield self._event("response.output_text.delta", item_id=self.output[self.text_index]["id"],
                          output_index=self.text_index, content_index=0, delta=text,
                          logprobs=[])

    def _tool(self, call: dict[str, Any]) -> Iterator[Event]:
        function = call.get("function") or {}
        index = self.tools.get(call.get("index", 0))
        if index is None:
            index = self.tools[call.get("index", 0)] = len(self.output)
            item = function_item(new_id("fc_"), call.get("id") or new_id("call_"),
                                 function.get("name") or "", "", "in_progress")
            self.output.append(item)
            yield self._event("response.output_item.added", output_index=index, item=dict(item))
        item = self.output[index]
        if function.get("name") and not item["name"]:
            item["name"] = function["name"]
        if arguments := function.get("arguments"):
            item["arguments"] += arguments
            yield self._event("response.function_call_arguments.delta", item_id=item["id"],
                              output_index=index, delta=arguments)

    def finish(self) -> Iterator[Event]:
        if not self.output:
            yield from self._open_message()
        incomplete = self.finish_reason in INCOMPLETE
        for index, item in enumerate(self.output):
            if item["type"] == "message":
                part = text_part(self.text)
                yield self._event("response.output_text.done", item_id=item["id"],
                                  output_index=index, content_index=0, text=self.text,
                                  logprobs=[])
                yield self._event("response.content_part.done", item_id=item["id"],
                                  output_index=index, content_index=0, part=part)
                item.update(content=[part], status="incomplete" if incomplete else "completed")
            else:
                yield self._event("response.function_call_arguments.done", item_id=item["id"],
                                  output_index=index, name=item["name"],
                                  arguments=item["arguments"])
                item["status"] = "completed"
            yield self._event("response.output_item.done", output_index=index, item=dict(item))
        response = self._response("completed")
        yield self._event(f"response.{response['status']}", response=response)

    def fail(self, message: str, status: int) -> Iterator[Event]:
        """The stream broke after it started: an `error` event, then `response.failed`."""
        code = "rate_limit_exceeded" if status == 429 else "server_error"
        yield self._event("error", code=code, message=message, param=None)
        yield self._event("response.failed",
                          response=self._response("failed", {"code": code, "message": message}))
