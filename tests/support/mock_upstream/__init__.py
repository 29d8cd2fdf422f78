"""A mock LLM upstream speaking OpenAI, Azure OpenAI, Anthropic and Bedrock at the wire.

    async with MockUpstream() as mock:
        client = openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="x")
        mock.script([{"status": 429, "retry_after": "1"}])
        ...
        assert mock.requests()[0]["model"] == "mock-gpt"

`MockUpstream.start_in_thread()` runs it on its own loop in a background thread
for synchronous tests and benchmarks; `python -m tests.support.mock_upstream`
runs it standalone. Behaviour is controlled by ``[[mock:key=value]]`` directives
in the last user message, by `script`/`configure`, or over HTTP under ``/_mock/``.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.support.mock_upstream.server import start_server
from tests.support.mock_upstream.state import DEFAULT_LOG_LIMIT, MockState

__all__ = ["MockUpstream", "new_event_loop"]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class MockUpstream:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, log_limit: int = DEFAULT_LOG_LIMIT,
    ) -> None:
        self.host = host
        self.port = port
        self.state = MockState(log_limit)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # --- lifecycle in the caller's loop ---------------------------------------------------

    async def start(self) -> MockUpstream:
        if self._runner is not None:
            raise RuntimeError("mock upstream already started")
        self._runner, self.port = await start_server(self.state, self.host, self.port)
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockUpstream:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- lifecycle on a background thread -------------------------------------------------

    @classmethod
    def start_in_thread(cls, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> MockUpstream:
        mock = cls(host, port, **kw)
        loop = new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(mock.start())
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(mock.stop())
            loop.close()

        mock._loop = loop
        mock._thread = threading.Thread(target=run, name="mock-upstream", daemon=True)
        mock._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return mock

    def stop_in_thread(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._loop = self._thread = None

    # --- control, in process (thread-safe) ------------------------------------------------

    def script(
        self, responses: list[dict[str, Any]], match: dict[str, str] | None = None,
    ) -> int:
        """Queue responses for matching requests (match keys: model, path, vendor)."""
        return self.state.script(responses, match)

    def configure(self, **values: float) -> dict[str, float]:
        """Set global defaults: latency_ms, ttft_ms, chunk_delay_ms."""
        return self.state.configure(**values)

    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first."""
        return self.state.requests()

    def reset(self) -> None:
        """Forget scripts, config and the request log."""
        self.state.reset()
