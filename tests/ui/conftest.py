"""Browser tests of the admin console: real Chromium (driven by Playwright) against a
live `headrace serve` whose models point at the mock LLM upstream.

Every test's page fails the test on a browser console error, an uncaught page
error, or a request to anything but the server. One kind of console line is not
an error of the console: Chromium logs "Failed to load resource: ... 4xx" for every
API answer with a 4xx status, and the console asks for some on purpose (a wrong key
at sign-in is a 401, a form with a bad value a 400, shown next to the field). Those
are allowed for `/admin/` and `/v1/` URLs only; a 4xx for any asset, and any 5xx,
still fails.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.live import AUTH, TEST_ADMIN_KEY, LiveServer, live_server
from tests.support.mock_upstream import MockUpstream
from tests.support.services import unavailable

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 420, "height": 800}
API_4XX = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


def chromium_path() -> str | None:
    configured = os.environ.get("HEADRACE_TEST_CHROMIUM")
    if configured:
        return configured
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Console:
    """What the tests know about the server they drive."""

    server: LiveServer
    mock_url: str
    non_admin_key: str

    @property
    def url(self) -> str:
        return self.server.url

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=10.0)


def _seed(server: LiveServer, mock_url: str) -> str:
    """Models on the mock, a chain, a team, a budget, a prompt and some traffic."""
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10.0) as client:
        def post(path: str, body: dict) -> dict:
            response = client.post(path, json=body)
            assert response.status_code == 201, response.text
            return response.json()

        post("/admin/models", {
            "id": "ui-mock", "name": "Mock chat", "provider": "openai_compatible",
            "model": "mock-model", "base_url": f"{mock_url}/v1", "aliases": ["ui/mock"],
            "pricing": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
        post("/admin/chains", {"id": "ui-chain", "name": "Mock chain",
                               "steps": [{"model": "ui-mock"}]})
        post("/admin/teams", {"id": "ui-team", "name": "UI team",
                              "rate_limits": {"requests_per_minute": 600}})
        post("/admin/budgets", {"id": "ui-budget", "scope": "team", "scope_id": "ui-team",
                                "amount_usd": 10, "period": "monthly"})
        post("/admin/prompts", {"id": "ui-prompt", "content": "Answer as ${var:persona:a pilot}."})
        member = post("/admin/api-keys", {"name": "ui member", "team_id": "ui-team"})
        for text in ("hello", "again", "[[mock:status=400]] refused"):
            client.post("/v1/chat/completions", json={
                "model": "ui-mock", "messages": [{"role": "user", "content": text}]})
        # Usage is written in batches (every 0.5 s): wait until the dashboard can see it.
        deadline = time.monotonic() + 10
        while client.get("/admin/usage").json()["totals"]["requests"] < 3:
            assert time.monotonic() < deadline, "usage was not recorded"
            time.sleep(0.2)
        return member["secret"]


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A live server of its own (UI tests create data), seeded, with the mock upstream."""
    mock = MockUpstream.start_in_thread()
    try:
        with live_server(tmp_path_factory.mktemp("ui-server")) as server:
            yield Console(server, mock.url, _seed(server, mock.url))
    finally:
        mock.stop_in_thread()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    """One Chromium for the session. Playwright's async API, on the suite's session
    event loop: its sync API would hold a running loop that breaks later async tests."""
    path = chromium_path()
    if path is None:
        unavailable("Chromium (install it: apt-get install -y chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("the playwright Python package (pip install -e '.[dev]')")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, headless=True,
                                                   args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


def _is_allowed(message, origin: str) -> bool:
    url = (message.location or {}).get("url", "")
    parts = urlsplit(url)
    return (bool(API_4XX.search(message.text)) and f"{parts.scheme}://{parts.netloc}" == origin
            and parts.path.startswith(("/admin/", "/v1/")))


@pytest.fixture
async def page(browser, console: Console) -> AsyncIterator[object]:
    """A fresh page at 1280x800 that fails the test on console errors, page errors and
    requests leaving the server."""
    context = await browser.new_context(viewport=WIDE, base_url=console.url,
                                        accept_downloads=True)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.url)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []

    def on_console(message) -> None:
        if message.type == "error" and not _is_allowed(message, console.url):
            problems.append(f"console error: {message.text} ({message.location.get('url')})")

    def on_request(request) -> None:
        if not request.url.startswith((console.url + "/", "data:", "blob:")):
            problems.append(f"request outside the server: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", on_request)
    yield page
    await context.close()
    assert not problems, "\n".join(problems)


async def sign_in(page, key: str = TEST_ADMIN_KEY) -> None:
    """Open the console and sign in with `key` (the admin key by default)."""
    await page.goto("/ui/")
    await page.get_by_label("Admin API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("navigation", name="Main").wait_for()


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.getbasetemp() / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def screenshot(screenshots_dir: Path) -> Callable[[object, str], Awaitable[Path]]:
    """`await screenshot(page, name)`: the whole page as `<basetemp>/screenshots/<name>.png`."""
    async def take(page, name: str) -> Path:
        path = screenshots_dir / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path
    return take
