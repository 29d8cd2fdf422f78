"""OpenAI wire format: chat completions (JSON and SSE), embeddings, model list.

`serve_chat` and `serve_embeddings` are shared with the Azure routes, which
differ only in URL, authentication and error shape.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.support.mock_upstream import flow
from tests.support.mock_upstream.embedding import DEFAULT_DIMENSIONS, embed, to_base64

VENDOR = "openai"
SSE = "text/event-stream"
_DONE = b"data: [DONE]\n\n"
_FINISH = {"stop": "stop", "length": "length", "tool": "tool_calls"}
_ERROR_TYPES = {
    400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
MODELS = ("mock-gpt", "mock-embedding")


def error(status: int, message: str) -> tuple[Any, dict[str, str]]:
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else
                                            "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}, {}


# --- reading requests -------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def _tool_names(body: dict[str, Any]) -> list[str]:
    if body.get("tool_choice") == "none":
        return []
    return [
        t["function"]["name"] for t in body.get("tools") or ()
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
    ]


def _forced_tool(choice: Any, tools: list[str]) -> str | None:
    if choice == "required" and tools:
        return tools[0]
    if isinstance(choice, dict):
        return (choice.get("function") or {}).get("name")
    return None


def _json_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {}
    return None


def read_turn(body: dict[str, Any], model: str | None) -> flow.Turn:
    messages = body["messages"]
    texts = [_text(m.get("content")) for m in messages if isinstance(m, dict)]
    last_user = next(
        (_text(m.get("content")) for m in reversed(messages)
         if isinstance(m, dict) and m.get("role") == "user"), "",
    )
    tools = _tool_names(body)
    last_role = messages[-1].get("role") if isinstance(messages[-1], dict) else None
    return flow.Turn(
        model=model, text=last_user, input_tokens=flow.count_tokens(texts),
        stream=bool(body.get("stream")), tools=tools,
        forced_tool=_forced_tool(body.get("tool_choice"), tools),
        after_tool_result=last_role in ("tool", "function"),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        json_schema=_json_schema(body),
    )


# --- chat completions -------------------------------------------------------------------


def _usage(turn: flow.Turn, reply: flow.Reply) -> dict[str, int]:
    return {
        "prompt_tokens": turn.input_tokens, "completion_tokens": reply.output_tokens,
        "total_tokens": turn.input_tokens + reply.output_tokens,
    }


def _message(reply: flow.Reply, call_id: str) -> dict[str, Any]:
    if reply.tool_name:
        return {
            "role": "assistant", "content": None, "refusal": None,
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": reply.tool_name, "arguments": reply.tool_args}}],
        }
    return {"role": "assistant", "content": reply.text, "refusal": None}


async def serve_chat(
    request: web.Request, error_fn: flow.ErrorFn, model: str | None,
    body: Any, entry: dict[str, Any],
) -> web.StreamResponse:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
            or not body["messages"]:
        raise flow.reject(entry, error_fn, 400, "'messages' must be a non-empty array")
    if not model:
        raise flow.reject(entry, error_fn, 400, "you must provide a model parameter")
    turn = read_turn(body, model)
    entry["stream"] = turn.stream
    exchange = await flow.begin(request, entry, turn, error_fn)
    reply, created = exchange.reply, int(time.time())
    completion_id, call_id = flow.next_id("chatcmpl-mock"), flow.next_id("call_mock")
    finish = _FINISH[reply.finish]
    if not turn.stream:
        n = int(body.get("n") or 1)
        return exchange.respond({
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": i, "message": _message(reply, call_id), "logprobs": None,
                         "finish_reason": finish} for i in range(n)],
            "usage": _usage(turn, reply), "system_fingerprint": None,
        })
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish_reason}],
        }
        if include_usage:
            data["usage"] = None
        return b"data: " + flow.dumps(data) + b"\n\n"

    await exchange.open_stream(SSE, {"Cache-Control": "no-cache"})
    if reply.tool_name:
        await exchange.send(chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": call_id, "type": "function",
             "function": {"name": reply.tool_name, "arguments": ""}}]}))
        for piece in reply.chunks():
            await exchange.send(chunk({"tool_calls": [
                {"index": 0, "function": {"arguments": piece}}]}), content=True)
    else:
        await exchange.send(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in reply.chunks():
            await exchange.send(chunk({"content": piece}), content=True)
    await exchange.send(chunk({}, finish))
    if include_usage:
        await exchange.send(b"data: " + flow.dumps({
            "id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": None, "choices": [],
            "usage": _usage(turn, reply),
        }) + b"\n\n")
    await exchange.send(_DONE)
    return await exchange.close_stream()


@flow.endpoint
async def chat(request: web.Request) -> web.StreamResponse:
    body = await flow.read_json(request)
    model = body.get("model") if isinstance(body, dict) else None
    entry = flow.start_record(request, VENDOR, body, model)
    return await serve_chat(request, error, model, body, entry)


# --- embeddings -------------------------------------------------------------------------


def _inputs(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [" ".join(map(str, value))]
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(isinstance(v, list) for v in value):
            return [" ".join(map(str, v)) for v in value]
    return None


async def serve_embeddings(
    request: web.Request, error_fn: flow.ErrorFn, model: str | None,
    body: Any, entry: dict[str, Any],
) -> web.StreamResponse:
    texts = _inputs(body.get("input")) if isinstance(body, dict) else None
    if texts is None:
        raise flow.reject(entry, error_fn, 400, "'input' must be a string or array")
    dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
    base64 = body.get("encoding_format") == "base64"
    tokens = flow.count_tokens(texts)
    turn = flow.Turn(model=model, text="\n".join(texts), input_tokens=tokens)
    exchange = await flow.begin(request, entry, turn, error_fn)
    data = []
    for index, text in enumerate(texts):
        vector = embed(text, dimensions)
        data.append({"object": "embedding", "index": index,
                     "embedding": to_base64(vector) if base64 else vector})
    return exchange.respond({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })


@flow.endpoint
async def embeddings(request: web.Request) -> web.StreamResponse:
    body = await flow.read_json(request)
    model = body.get("model") if isinstance(body, dict) else None
    entry = flow.start_record(request, VENDOR, body, model)
    return await serve_embeddings(request, error, model, body, entry)


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [
        {"id": name, "object": "model", "created": 1700000000, "owned_by": "mock-upstream"}
        for name in MODELS
    ]})
