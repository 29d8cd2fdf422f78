"""AWS Bedrock runtime wire format: Converse, ConverseStream and InvokeModel.

Model ids arrive URL-encoded in the path (``anthropic.claude-3%3A0``, ARNs with
``%2F``). SigV4 signatures are not verified; the request log shows whether an
``authorization`` header came. Streams use AWS event-stream framing.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from tests.support.mock_upstream import anthropic, flow
from tests.support.mock_upstream.embedding import DEFAULT_DIMENSIONS, embed
from tests.support.mock_upstream.eventstream import CONTENT_TYPE, encode_event

VENDOR = "bedrock"
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}
_ERRORS = {
    400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
    408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
    500: "InternalServerException", 503: "ServiceUnavailableException",
}
_OPERATIONS = ("converse-stream", "converse", "invoke")


def error(status: int, message: str) -> tuple[Any, dict[str, str]]:
    kind = _ERRORS.get(status, "InternalServerException" if status >= 500
                       else "ValidationException")
    return {"message": message}, {
        "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": flow.next_id("mock-"),
    }


# --- reading Converse requests ----------------------------------------------------------


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    if "text" in block:
        return str(block["text"])
    result = block.get("toolResult")
    if isinstance(result, dict):
        return " ".join(
            str(part["text"]) if "text" in part else orjson.dumps(part.get("json")).decode()
            for part in result.get("content") or () if isinstance(part, dict)
        )
    return ""


def _text(content: Any) -> str:
    return " ".join(_block_text(b) for b in content) if isinstance(content, list) else ""


def _read_converse(body: dict[str, Any], model: str, *, stream: bool) -> flow.Turn:
    messages = body["messages"]
    texts = [_text(body.get("system"))]
    texts.extend(_text(m.get("content")) for m in messages if isinstance(m, dict))
    last_user = next((m for m in reversed(messages)
                      if isinstance(m, dict) and m.get("role") == "user"), {})
    config = body.get("toolConfig") or {}
    tools = [t["toolSpec"]["name"] for t in config.get("tools") or ()
             if isinstance(t, dict) and "name" in (t.get("toolSpec") or {})]
    choice = config.get("toolChoice") or {}
    forced = (choice.get("tool") or {}).get("name") or (
        tools[0] if "any" in choice and tools else None)
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    return flow.Turn(
        model=model, text=_text(last_user.get("content")), input_tokens=flow.count_tokens(texts),
        stream=stream, tools=tools, forced_tool=forced,
        after_tool_result=any(isinstance(b, dict) and "toolResult" in b
                              for b in last.get("content") or ()),
        max_tokens=(body.get("inferenceConfig") or {}).get("maxTokens"),
    )


def _usage(turn: flow.Turn, reply: flow.Reply) -> dict[str, int]:
    return {"inputTokens": turn.input_tokens, "outputTokens": reply.output_tokens,
            "totalTokens": turn.input_tokens + reply.output_tokens}


def _tool_input(reply: flow.Reply) -> Any:
    try:
        return orjson.loads(reply.tool_args)
    except orjson.JSONDecodeError:
        return {}


def _request_id() -> dict[str, str]:
    return {"x-amzn-RequestId": flow.next_id("mock-")}


# --- operations -------------------------------------------------------------------------


async def _converse(
    request: web.Request, entry: dict[str, Any], body: Any, model: str, started: float,
    *, stream: bool,
) -> web.StreamResponse:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
            or not body["messages"]:
        raise flow.reject(entry, error, 400, "messages: at least one message is required")
    turn = _read_converse(body, model, stream=stream)
    exchange = await flow.begin(request, entry, turn, error)
    reply, tool_id = exchange.reply, flow.next_id("tooluse_mock")

    def latency() -> dict[str, int]:
        return {"latencyMs": int((time.perf_counter() - started) * 1000)}

    if not stream:
        block = ({"toolUse": {"toolUseId": tool_id, "name": reply.tool_name,
                              "input": _tool_input(reply)}}
                 if reply.tool_name else {"text": reply.text})
        return exchange.respond({
            "output": {"message": {"role": "assistant", "content": [block]}},
            "stopReason": _STOP[reply.finish], "usage": _usage(turn, reply),
            "metrics": latency(),
        }, headers=_request_id())

    def event(name: str, payload: dict[str, Any]) -> bytes:
        return encode_event(name, flow.dumps(payload))

    await exchange.open_stream(CONTENT_TYPE, _request_id())
    await exchange.send(event("messageStart", {"role": "assistant"}))
    if reply.tool_name:
        await exchange.send(event("contentBlockStart", {
            "start": {"toolUse": {"toolUseId": tool_id, "name": reply.tool_name}},
            "contentBlockIndex": 0}))
    for piece in reply.chunks():
        delta = {"toolUse": {"input": piece}} if reply.tool_name else {"text": piece}
        await exchange.send(event("contentBlockDelta", {
            "delta": delta, "contentBlockIndex": 0}), content=True)
    await exchange.send(event("contentBlockStop", {"contentBlockIndex": 0}))
    await exchange.send(event("messageStop", {"stopReason": _STOP[reply.finish]}))
    await exchange.send(event("metadata", {"usage": _usage(turn, reply), "metrics": latency()}))
    return await exchange.close_stream()


async def _invoke(
    request: web.Request, entry: dict[str, Any], body: Any, model: str,
) -> web.StreamResponse:
    if isinstance(body, dict) and isinstance(body.get("inputText"), str):
        text = body["inputText"]
        tokens = flow.count_tokens([text])
        turn = flow.Turn(model=model, text=text, input_tokens=tokens)
        exchange = await flow.begin(request, entry, turn, error)
        vector = embed(text, int(body.get("dimensions") or DEFAULT_DIMENSIONS))
        return exchange.respond(
            {"embedding": vector, "inputTextTokenCount": tokens},
            headers={**_request_id(), "X-Amzn-Bedrock-Input-Token-Count": str(tokens)},
        )
    if isinstance(body, dict) and isinstance(body.get("messages"), list) and body["messages"]:
        turn = anthropic.read_turn(body, model, stream=False)
        exchange = await flow.begin(request, entry, turn, error)
        reply = exchange.reply
        payload = anthropic.message(
            turn, reply, flow.next_id("msg_bdrk_mock"), flow.next_id("toolu_bdrk_mock"))
        return exchange.respond(payload, headers={
            **_request_id(),
            "X-Amzn-Bedrock-Input-Token-Count": str(turn.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(reply.output_tokens),
        })
    raise flow.reject(entry, error, 400, "Malformed input request: expected inputText "
                      "(Titan embeddings) or messages (Anthropic)")


@flow.endpoint
async def model_operation(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    raw = request.rel_url.raw_path.removeprefix("/model/")
    raw_model, _, operation = raw.rpartition("/")
    model = unquote(raw_model)
    body = await flow.read_json(request)
    entry = flow.start_record(request, VENDOR, body, model, stream=operation == "converse-stream")
    if not raw_model or operation not in _OPERATIONS:
        raise flow.reject(entry, error, 404, f"Unknown operation: {operation}")
    if operation == "invoke":
        return await _invoke(request, entry, body, model)
    return await _converse(request, entry, body, model, started,
                           stream=operation == "converse-stream")
