"""The admin console: its static files at `/ui/`, and the UI-only app of
`headrace ui`, which serves them and proxies the API routes to another Headrace."""

from __future__ import annotations

import json

import httpx
from quart import Quart, Response, redirect, request, send_from_directory
from quart_schema import hide
from werkzeug.exceptions import NotFound

import ui

# Routes the console calls; everything else stays local.
PROXIED_PREFIXES = ("admin", "v1")
# Hop-by-hop headers (RFC 9110 7.6.1) and those httpx/Hypercorn recompute.
_NOT_FORWARDED = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})


def mount_console(app: Quart) -> None:
    @app.get("/")
    @hide
    async def root() -> Response:
        return redirect("/ui/")

    @app.get("/ui")
    @hide
    async def console_slash() -> Response:
        return redirect("/ui/")

    @app.get("/ui/")
    @app.get("/ui/<path:path>")
    @hide
    async def console(path: str = "index.html") -> Response:
        try:
            response = await send_from_directory(ui.STATIC_DIR, path)
        except NotFound:
            if "." in path.rsplit("/", 1)[-1]:
                raise  # a missing asset is a 404, not the page
            # A deep link (`/ui/models/m1`) loads the console, which routes itself.
            response = await send_from_directory(ui.STATIC_DIR, "index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response


def create_console_app(api_url: str | None, *, max_body_bytes: int = 100 * 2**20) -> Quart:
    """The console alone; with `api_url`, `/admin/*` and `/v1/*` are forwarded
    there (streamed both ways, so run events and chat streams pass through)."""
    app = Quart("headrace-console", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    mount_console(app)

    @app.get("/health")
    async def health() -> Response:
        return Response('{"status":"healthy","mode":"console"}',
                        content_type="application/json")

    if api_url is None:
        return app
    upstream = api_url.rstrip("/")
    client: httpx.AsyncClient | None = None

    @app.before_serving
    async def _open() -> None:
        nonlocal client
        client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(30, read=None),
                                   follow_redirects=False)

    @app.after_serving
    async def _close() -> None:
        if client is not None:
            await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.route("/<any(admin, v1):prefix>/<path:path>", methods=methods)
    async def proxy(prefix: str, path: str) -> Response:
        assert client is not None
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in _NOT_FORWARDED}
        outgoing = client.build_request(
            request.method, f"/{prefix}/{path}", params=list(request.args.items(multi=True)),
            headers=headers, content=await request.get_data())
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.HTTPError as error:
            error_body = {"message": f"the Headrace API at {upstream} is unreachable "
                                     f"({type(error).__name__})", "type": "api_error",
                          "param": None, "code": "upstream_unreachable"}
            return Response(json.dumps({"error": error_body}), status=502,
                            content_type="application/json")

        async def relay():
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:
                await answer.aclose()

        # Raw bytes pass through, so a compressed body keeps its content-encoding.
        kept = [(k, v) for k, v in answer.headers.multi_items()
                if k.lower() not in _NOT_FORWARDED]
        response = Response(relay(), status=answer.status_code, headers=kept)
        response.timeout = None  # streams (run events) last as long as they last
        return response

    return app
