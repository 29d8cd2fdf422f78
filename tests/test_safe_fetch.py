"""User-given URLs are fetched with SSRF protection, size and time limits."""

from __future__ import annotations

import pytest
from aiohttp import web

from connectors.web import fetch, is_internal
from engine.errors import InvalidRequest


@pytest.fixture
async def local_server():
    app = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello world", headers={"ETag": '"v1"'})

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 10_000)

    app.router.add_get("/hello", hello)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4",
                                     "169.254.169.254", "::1", "fe80::1", "0.0.0.0",
                                     "::ffff:127.0.0.1", "100.64.0.1"])
def test_internal_addresses(address):
    assert is_internal(address)


def test_public_addresses():
    assert not is_internal("8.8.8.8") and not is_internal("2606:4700::1111")


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/x", "http://169.254.169.254/latest",
                                 "http://[::1]/x", "http://localhost/x", "ftp://example.com/x",
                                 "file:///etc/passwd"])
async def test_internal_and_non_http_targets_are_refused(url):
    with pytest.raises(InvalidRequest) as raised:
        await fetch(url)
    assert raised.value.param == "url"
    if url.startswith("http"):
        assert raised.value.code == "url_not_allowed", raised.value.message


async def test_allowed_private_fetch_and_limits(local_server):
    fetched = await fetch(f"{local_server}/hello", allow_private=True)
    assert fetched.data == b"hello world" and fetched.etag == '"v1"'
    assert fetched.content_type == "text/plain"
    with pytest.raises(InvalidRequest, match="larger than"):
        await fetch(f"{local_server}/big", allow_private=True, max_bytes=1000)
