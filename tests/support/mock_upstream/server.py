"""The aiohttp application: vendor routes, the ``/_mock/`` control API, and startup."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import web

from tests.support.mock_upstream import anthropic, azure, bedrock, openai
from tests.support.mock_upstream.flow import STATE, dumps, read_json
from tests.support.mock_upstream.state import MockState

MAX_BODY = 64 * 1024 * 1024


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json")


async def _control_body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def post_script(request: web.Request) -> web.Response:
    body = await _control_body(request)
    responses = body.get("responses")
    if not isinstance(responses, list):
        return _json({"error": "'responses' must be an array"}, 400)
    state = request.app[STATE]
    try:
        queued = state.script(responses, body.get("match"))
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"queued": queued})


async def get_config(request: web.Request) -> web.Response:
    return _json(request.app[STATE].configure())


async def post_config(request: web.Request) -> web.Response:
    try:
        return _json(request.app[STATE].configure(**await _control_body(request)))
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, 400)


async def get_requests(request: web.Request) -> web.Response:
    return _json(request.app[STATE].requests())


async def post_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return _json({"ok": True})


async def get_health(request: web.Request) -> web.Response:
    return _json({"ok": True})


def create_app(state: MockState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", openai.chat)
    app.router.add_post("/v1/embeddings", openai.embeddings)
    app.router.add_get("/v1/models", openai.models)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", azure.chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", azure.embeddings)
    app.router.add_post("/v1/messages", anthropic.messages)
    app.router.add_post("/model/{tail:.+}", bedrock.model_operation)
    app.router.add_post("/_mock/script", post_script)
    app.router.add_get("/_mock/config", get_config)
    app.router.add_post("/_mock/config", post_config)
    app.router.add_get("/_mock/requests", get_requests)
    app.router.add_post("/_mock/reset", post_reset)
    app.router.add_get("/_mock/health", get_health)
    return app


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


async def start_server(state: MockState, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve on (host, port); port 0 picks a free one. Returns the runner and the port."""
    runner = web.AppRunner(
        create_app(state), handler_cancellation=True, access_log=None, shutdown_timeout=0.2,
    )
    await runner.setup()
    sock = bind(host, port)
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    return runner, sock.getsockname()[1]
