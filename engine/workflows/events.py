"""Run events, buffered so a client can follow a run, drop, and re-attach.

Events are published as they happen to a buffer kept for `ttl_s` after the
run ends: in process by default, a Redis stream per run when Redis is
configured (so any replica can replay and follow a run). `follow(run_id,
after)` yields the events after sequence number `after`, then the live ones,
until `run_finished`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

FINAL = "run_finished"


class EventBuffer(Protocol):
    async def open(self, run_id: str) -> None:
        """Make a run followable before its first event (so a follower waits)."""

    async def publish(self, run_id: str, event: dict[str, Any]) -> None: ...

    def follow(self, run_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]: ...

    async def known(self, run_id: str) -> bool: ...


@dataclass
class _Run:
    events: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None


class MemoryEventBuffer:
    def __init__(self, *, ttl_s: float = 600.0, max_events: int = 10_000):
        self.ttl_s = ttl_s
        self.max_events = max_events
        self._runs: dict[str, _Run] = {}

    def _sweep(self) -> None:
        now = time.monotonic()
        for run_id in [r for r, run in self._runs.items()
                       if run.finished_at is not None and now - run.finished_at > self.ttl_s]:
            del self._runs[run_id]

    async def open(self, run_id: str) -> None:
        if run_id not in self._runs:
            self._sweep()
            self._runs[run_id] = _Run()

    async def publish(self, run_id: str, event: dict[str, Any]) -> None:
        run = self._runs.get(run_id)
        if run is None:
            self._sweep()
            run = self._runs[run_id] = _Run()
        if len(run.events) < self.max_events or event["event"] == FINAL:
            run.events.append(event)
        if event["event"] == FINAL:
            run.finished_at = time.monotonic()
        run.changed.set()
        run.changed = asyncio.Event()

    async def known(self, run_id: str) -> bool:
        return run_id in self._runs

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        position = 0
        while True:
            run = self._runs.get(run_id)
            if run is None:
                return
            waiter = run.changed
            while position < len(run.events):
                event = run.events[position]
                position += 1
                if event.get("seq", 0) > after:
                    yield event
                if event["event"] == FINAL:
                    return
            await waiter.wait()


class RedisEventBuffer:
    """One Redis stream per run: XADD as events happen, XREAD to replay and follow."""

    def __init__(self, client: Any, *, ttl_s: float = 600.0, prefix: str = "headrace:run:",
                 block_ms: int = 5_000):
        self.client = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.block_ms = block_ms

    async def open(self, run_id: str) -> None:
        """Nothing to do: a follower's XREAD blocks until the first event arrives."""

    async def publish(self, run_id: str, event: dict[str, Any]) -> None:
        key = self.prefix + run_id
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"e": orjson.dumps(event, default=str)}, maxlen=10_000,
                      approximate=True)
            pipe.expire(key, int(self.ttl_s) + (3600 if event["event"] != FINAL else 0))
            await pipe.execute()

    async def known(self, run_id: str) -> bool:
        return bool(await self.client.exists(self.prefix + run_id))

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        key = self.prefix + run_id
        last = "0-0"
        while True:
            answer = await self.client.xread({key: last}, block=self.block_ms, count=500)
            if not answer:
                if not await self.client.exists(key):
                    return
                continue
            for _stream, entries in answer:
                for entry_id, fields in entries:
                    last = entry_id
                    event = orjson.loads(fields[b"e"] if b"e" in fields else fields["e"])
                    if event.get("seq", 0) > after:
                        yield event
                    if event["event"] == FINAL:
                        return
