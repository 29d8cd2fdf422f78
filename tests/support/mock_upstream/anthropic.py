"""Anthropic Messages API wire format: JSON and SSE with Anthropic's event names.

`read_turn` and `message` are shared with Bedrock's InvokeModel for Claude models.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.support.mock_upstream import flow

VENDOR = "anthropic"
SSE = "text/event-stream"
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}
_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error",
}


def error(status: int, message: str) -> tuple[Any, dict[str, str]]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return ({"type": "error", "error": {"type": kind, "message": message}},
            {"request-id": flow.next_id("req_mock")})


# --- reading requests -------------------------------------------------------------------


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return block.get("text", "")
    if block.get("type") == "tool_result":
        return _text(block.get("content"))
    return ""


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(_block_text(b) for b in content)
    return _block_text(content)


def _is_tool_result(message: Any) -> bool:
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def read_turn(body: dict[str, Any], model: str | None, *, stream: bool) -> flow.Turn:
    messages = body["messages"]
    texts = [_text(body.get("system"))]
    texts.extend(_text(m.get("content")) for m in messages if isinstance(m, dict))
    last_user = next((m for m in reversed(messages)
                      if isinstance(m, dict) and m.get("role") == "user"), {})
    choice = body.get("tool_choice") or {}
    tools = [] if choice.get("type") == "none" else [
        t["name"] for t in body.get("tools") or () if isinstance(t, dict) and "name" in t
    ]
    forced = choice.get("name") if choice.get("type") == "tool" else (
        tools[0] if choice.get("type") == "any" and tools else None)
    return flow.Turn(
        model=model, text=_text(last_user.get("content")), input_tokens=flow.count_tokens(texts),
        stream=stream, tools=tools, forced_tool=forced,
        after_tool_result=_is_tool_result(messages[-1]), max_tokens=body.get("max_tokens"),
    )


def _tool_input(reply: flow.Reply) -> Any:
    try:
        return orjson.loads(reply.tool_args)
    except orjson.JSONDecodeError:
        return {}


def message(
    turn: flow.Turn, reply: flow.Reply, message_id: str, tool_id: str, *, streaming: bool = False,
) -> dict[str, Any]:
    """The Message object; `streaming` gives the empty one that message_start carries."""
    if streaming:
        content: list[dict[str, Any]] = []
    elif reply.tool_name:
        content = [{"type": "tool_use", "id": tool_id, "name": reply.tool_name,
                    "input": _tool_input(reply)}]
    else:
        content = [{"type": "text", "text": reply.text}]
    return {
        "id": message_id, "type": "message", "role": "assistant", "model": turn.model,
        "content": content, "stop_reason": None if streaming else _STOP[reply.finish],
        "stop_sequence": None,
        "usage": {"input_tokens": turn.input_tokens,
                  "output_tokens": 1 if streaming else reply.output_tokens,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


# --- the endpoint -----------------------------------------------------------------------


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + flow.dumps(data) + b"\n\n"


@flow.endpoint
async def messages(request: web.Request) -> web.StreamResponse:
    body = await flow.read_json(request)
    model = body.get("model") if isinstance(body, dict) else None
    entry = flow.start_record(request, VENDOR, body, model)
    headers = request.headers
    if "x-api-key" not in headers and "authorization" not in headers:
        raise flow.reject(entry, error, 401, "x-api-key header is required")
    if "anthropic-version" not in headers:
        raise flow.reject(entry, error, 400, "anthropic-version: header is required")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
            or not body["messages"]:
        raise flow.reject(entry, error, 400, "messages: field required")
    if not model or not isinstance(body.get("max_tokens"), int):
        raise flow.reject(entry, error, 400, "model and max_tokens: fields required")
    turn = read_turn(body, model, stream=bool(body.get("stream")))
    entry["stream"] = turn.stream
    exchange = await flow.begin(request, entry, turn, error)
    reply = exchange.reply
    message_id, tool_id = flow.next_id("msg_mock"), flow.next_id("toolu_mock")
    request_id = {"request-id": flow.next_id("req_mock")}
    if not turn.stream:
        return exchange.respond(message(turn, reply, message_id, tool_id), headers=request_id)

    await exchange.open_stream(SSE, {"Cache-Control": "no-cache", **request_id})
    await exchange.send(_event("message_start", {
        "type": "message_start",
        "message": message(turn, reply, message_id, tool_id, streaming=True)}))
    if reply.tool_name:
        block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": reply.tool_name,
                                 "input": {}}
        delta_type, field = "input_json_delta", "partial_json"
    else:
        block, delta_type, field = {"type": "text", "text": ""}, "text_delta", "text"
    await exchange.send(_event("content_block_start", {
        "type": "content_block_start", "index": 0, "content_block": block}))
    await exchange.send(_event("ping", {"type": "ping"}))
    for piece in reply.chunks():
        await exchange.send(_event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": delta_type, field: piece}}), content=True)
    await exchange.send(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    await exchange.send(_event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": _STOP[reply.finish], "stop_sequence": None},
        "usage": {"output_tokens": reply.output_tokens}}))
    await exchange.send(_event("message_stop", {"type": "message_stop"}))
    return await exchange.close_stream()
