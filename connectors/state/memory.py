"""In-process shared state: correct within one process, and the fallback when
Redis is down."""

from __future__ import annotations

import time


class MemoryState:
    name = "memory"

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._writes = 0

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    def _sweep(self) -> None:
        # Expired keys are dropped lazily; a periodic sweep bounds memory.
        self._writes += 1
        if self._writes % 4096 == 0:
            now = time.monotonic()
            for key in [k for k, (_, e) in self._data.items() if e is not None and e <= now]:
                del self._data[key]

    async def incr(self, key: str, amount: int = 1, *, ttl_s: float | None = None) -> int:
        current = self._live(key)
        if current is None:
            value = amount
            expires = time.monotonic() + ttl_s if ttl_s else None
        else:
            value = int(current) + amount
            expires = self._data[key][1]
        self._data[key] = (str(value), expires)
        self._sweep()
        return value

    async def get_many(self, keys: list[str]) -> list[str | None]:
        return [self._live(k) for k in keys]

    async def set(
        self, key: str, value: str, *, ttl_s: float | None = None, nx: bool = False
    ) -> bool:
        if nx and self._live(key) is not None:
            return False
        self._data[key] = (value, time.monotonic() + ttl_s if ttl_s else None)
        self._sweep()
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)
