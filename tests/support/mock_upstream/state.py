"""The mock's shared state: config, script queues and the request log.

Guarded by one lock so a test thread can script or read the log while the
server's loop runs in another thread.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from typing import Any

from aiohttp import web

from tests.support.mock_upstream.script import Behaviour, Config, ScriptBook, parse_directives

DEFAULT_LOG_LIMIT = 10_000


class MockState:
    def __init__(self, log_limit: int = DEFAULT_LOG_LIMIT) -> None:
        self._lock = threading.Lock()
        self.config = Config()
        self.scripts = ScriptBook()
        self._log: deque[dict[str, Any]] = deque(maxlen=log_limit)

    # --- control ---------------------------------------------------------------------

    def script(self, responses: list[dict[str, Any]], match: dict[str, str] | None = None) -> int:
        with self._lock:
            return self.scripts.add(responses, match)

    def configure(self, **values: Any) -> dict[str, float]:
        with self._lock:
            self.config.update(values)
            return self.config.as_dict()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._log))

    def reset(self) -> None:
        with self._lock:
            self.config = Config()
            self.scripts.clear()
            self._log.clear()

    # --- per request -----------------------------------------------------------------

    def record(
        self, request: web.Request, vendor: str, body: Any, model: str | None,
        *, stream: bool = False,
    ) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        entry: dict[str, Any] = {
            "vendor": vendor,
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": headers,
            "auth": "authorization" in headers or "api-key" in headers
            or "x-api-key" in headers,
            "json": body,
            "model": model,
            "time": time.time(),
            "stream": stream,
            "status": None,
            "aborted": False,
            "broken": False,
        }
        with self._lock:
            self._log.append(entry)
        return entry

    def behaviour(
        self, vendor: str, path: str, model: str | None, text: str,
        *, tool_directive: bool = True,
    ) -> tuple[Behaviour, str]:
        """The behaviour for one request, and its prompt text without directives.

        ``tool_directive=False`` ignores ``[[mock:tool=...]]`` (the conversation
        already ends in a tool result, so the model should answer in text).
        """
        text, directives = parse_directives(text)
        if not tool_directive:
            directives.pop("tool", None)
            directives.pop("tool_args", None)
        with self._lock:
            behaviour = Behaviour.from_config(self.config)
            scripted = self.scripts.pop(vendor, path, model) if self.scripts else None
        if directives:
            behaviour.apply(directives)
        if scripted:
            behaviour.apply(scripted)
        return behaviour, text
