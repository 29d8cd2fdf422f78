"""Shared state for counters, flags and locks: in-process, or Redis across replicas.

Engine code uses this small protocol; `connectors.state` implements it in
memory and in Redis, and `FailoverState` keeps serving from memory while Redis
is unreachable.
"""

from __future__ import annotations

from typing import Protocol


class SharedState(Protocol):
    name: str

    async def incr(self, key: str, amount: int = 1, *, ttl_s: float | None = None) -> int:
        """Add to a counter; a new counter expires after `ttl_s`."""

    async def get_many(self, keys: list[str]) -> list[str | None]: ...

    async def set(
        self, key: str, value: str, *, ttl_s: float | None = None, nx: bool = False
    ) -> bool:
        """Set a value; with `nx`, only if absent. True if it was set."""

    async def delete(self, *keys: str) -> None: ...
