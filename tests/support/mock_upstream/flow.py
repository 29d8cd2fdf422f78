"""The pipeline every vendor endpoint shares: record, resolve, delay, fail or reply.

A vendor module turns its request body into a `Turn`, calls `begin`, and renders
the `Reply` in its own wire format through the returned `Exchange`, which also
handles streaming pacing (ttft, chunk delay) and deliberate connection drops.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.mock_upstream.schema import sample
from tests.support.mock_upstream.script import Behaviour
from tests.support.mock_upstream.state import MockState

STATE = web.AppKey("mock_upstream_state", MockState)
# aiohttp >= 3.13 wants typed request keys; older versions take a plain string.
_ENTRY: Any = getattr(web, "RequestKey", lambda name, _type: name)("mock_upstream_entry", dict)
_WORD_CHUNK = re.compile(r"\s*\S+\s*$|\s*\S+")
_ids = itertools.count(1)

ErrorFn = Callable[[int, str], tuple[Any, dict[str, str]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Finished(Exception):
    """Stop handling: answer with `response` (already sent if the link was dropped)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__()
        self.response = response


def endpoint(handler: Handler) -> Handler:
    """Wrap a vendor handler: early answers, and marking requests the client aborted."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Finished as done:
            return done.response
        except (asyncio.CancelledError, ConnectionError):
            entry = request.get(_ENTRY)
            if entry is not None:
                entry["aborted"] = True
            raise

    return wrapper


# --- text helpers ------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def count_tokens(texts: Iterable[str]) -> int:
    """The mock's token count: whitespace-separated words, at least 1."""
    return max(1, sum(len(t.split()) for t in texts))


def word_chunks(text: str) -> list[str]:
    """Split text into word chunks that join back to exactly `text`."""
    return _WORD_CHUNK.findall(text) or [text]


def piece_chunks(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


def next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):012d}"


async def sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


async def read_json(request: web.Request) -> Any:
    """The JSON body, or None when it is missing or not JSON."""
    raw = await request.read()
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


# --- one exchange --------------------------------------------------------------------------


@dataclass(slots=True)
class Turn:
    """What a vendor module read from a request."""

    model: str | None
    text: str  # last user message text, directives included
    input_tokens: int
    stream: bool = False
    tools: list[str] = field(default_factory=list)
    forced_tool: str | None = None
    after_tool_result: bool = False
    max_tokens: int | None = None
    json_schema: dict[str, Any] | None = None  # {} means any JSON object


@dataclass(slots=True)
class Reply:
    text: str = ""
    tool_name: str | None = None
    tool_args: str = "{}"
    finish: str = "stop"  # "stop" | "length" | "tool"
    output_tokens: int = 1

    def chunks(self) -> list[str]:
        return piece_chunks(self.tool_args) if self.tool_name else word_chunks(self.text)


def make_reply(turn: Turn, behaviour: Behaviour, prompt: str) -> Reply:
    tool = behaviour.tool or turn.forced_tool
    if tool and turn.tools:
        args = behaviour.tool_args
        text = args if isinstance(args, str) else orjson.dumps(args or {}).decode()
        return Reply(tool_name=tool, tool_args=text, finish="tool",
                     output_tokens=count_tokens([text]))
    if behaviour.reply is not None:
        text = behaviour.reply
    elif turn.json_schema is not None:
        reply = f"Mock reply to: {prompt[:200]}"
        value = sample(turn.json_schema, reply) if turn.json_schema else {"reply": reply}
        text = orjson.dumps(value).decode()
    else:
        text = f"Mock reply to: {prompt[:200]}"
    finish = "stop"
    if turn.max_tokens is not None and turn.json_schema is None:
        words = text.split()
        if len(words) > turn.max_tokens:
            text, finish = " ".join(words[: max(turn.max_tokens, 0)]), "length"
    return Reply(text=text, finish=finish, output_tokens=count_tokens([text]))


class Exchange:
    """One request being answered: plain JSON or a paced stream."""

    def __init__(
        self, request: web.Request, entry: dict[str, Any], behaviour: Behaviour, reply: Reply,
    ) -> None:
        self.request = request
        self.entry = entry
        self.behaviour = behaviour
        self.reply = reply
        self._stream: web.StreamResponse | None = None
        self._content_sent = 0

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        headers.update(self.behaviour.headers)
        if self.behaviour.retry_after is not None:
            headers["Retry-After"] = self.behaviour.retry_after
        return headers

    def respond(
        self, payload: Any, *, status: int = 200, headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> web.Response:
        self.entry["status"] = status
        body = payload if isinstance(payload, bytes) else dumps(payload)
        return web.Response(
            body=body, status=status, headers=self._headers(headers), content_type=content_type,
        )

    async def open_stream(self, content_type: str, headers: dict[str, str] | None = None) -> None:
        response = web.StreamResponse(status=200, headers=self._headers(headers))
        response.content_type = content_type
        self.entry["status"] = 200
        await response.prepare(self.request)
        self._stream = response
        await sleep_ms(self.behaviour.ttft_ms)

    async def send(self, data: bytes, *, content: bool = False) -> None:
        """Write one event; `content` events are paced and counted for break_after."""
        assert self._stream is not None, "open_stream first"
        if content:
            limit = self.behaviour.break_after
            if limit is not None and self._content_sent >= limit:
                self.drop()
            if self._content_sent:
                await sleep_ms(self.behaviour.chunk_delay_ms)
            self._content_sent += 1
        await self._stream.write(data)

    async def close_stream(self) -> web.StreamResponse:
        assert self._stream is not None, "open_stream first"
        await self._stream.write_eof()
        return self._stream

    def drop(self) -> None:
        """Close the connection without a proper end of the response."""
        self.entry["broken"] = True
        transport = self.request.transport
        if transport is not None:
            transport.close()
        raise Finished(self._stream or web.Response())


async def begin(
    request: web.Request, entry: dict[str, Any], turn: Turn, error: ErrorFn,
) -> Exchange:
    """Apply the request's behaviour up to the point of replying.

    Raises `Finished` when the behaviour is an error, a raw body or a drop.
    """
    behaviour, prompt = request.app[STATE].behaviour(
        entry["vendor"], request.path, turn.model, turn.text,
        tool_directive=not turn.after_tool_result,
    )
    exchange = Exchange(request, entry, behaviour, Reply())
    await sleep_ms(behaviour.delay_ms)
    if behaviour.body is not None:
        raise Finished(exchange.respond(behaviour.body, status=behaviour.status))
    if behaviour.is_error:
        payload, headers = error(behaviour.status, f"Mock error {behaviour.status}")
        raise Finished(exchange.respond(payload, status=behaviour.status, headers=headers))
    if not turn.stream and behaviour.break_after is not None:
        exchange.drop()
    exchange.reply = make_reply(turn, behaviour, prompt)
    return exchange


def start_record(
    request: web.Request, vendor: str, body: Any, model: str | None, *, stream: bool = False,
) -> dict[str, Any]:
    entry = request.app[STATE].record(request, vendor, body, model, stream=stream)
    request[_ENTRY] = entry
    return entry


def reject(
    entry: dict[str, Any], error: ErrorFn, status: int, message: str,
) -> Finished:
    """An early vendor-shaped error (bad request, missing credentials)."""
    payload, headers = error(status, message)
    entry["status"] = status
    return Finished(web.Response(body=dumps(payload), status=status, headers=headers,
                                 content_type="application/json"))
