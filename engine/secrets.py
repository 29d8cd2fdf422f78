"""Credentials by reference, never by value.

A model names its credential as `<scheme>:<path>`: `env:OPENAI_API_KEY`,
`file:/run/secrets/openai`, `vault:secret/llm/openai#api_key`,
`aws:prod/llm#openai`. A source per scheme fetches the value; values are
cached for `ttl_s` so secret stores are not hit per request, and a source may
say its value changed sooner (mounted files are re-read when they change).
Values never appear in logs, errors or admin responses: errors name the
reference only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from engine.errors import HeadraceError, InvalidRequest, ServiceUnavailable
from engine.logs import get_logger

log = get_logger("headrace.secrets")


class SecretError(ServiceUnavailable):
    """A reference could not be resolved (the message names the reference, not a value).

    A 503 to the caller: the request was fine, the server cannot serve it now.
    """

    default_code = "credential_unavailable"


class SecretSource(Protocol):
    scheme: str
    description: str

    async def fetch(self, path: str) -> str:
        """The secret at `path`; raise SecretError if it does not exist."""

    def changed(self, path: str, fetched_at: float) -> bool:
        """True if the value may have changed since `fetched_at` (checked on each use)."""


@dataclass(slots=True)
class _Cached:
    value: str
    fetched_at: float


def parse_reference(reference: str) -> tuple[str, str]:
    scheme, sep, path = reference.partition(":")
    if not sep or not path or not scheme.isalpha():
        raise InvalidRequest(
            f"credential reference '{reference}' must look like <scheme>:<path>, for example "
            "env:OPENAI_API_KEY",
            param="credentials",
        )
    return scheme, path


class Secrets:
    def __init__(self, sources: list[SecretSource], *, ttl_s: float = 300.0):
        self.sources = {s.scheme: s for s in sources}
        self.ttl_s = ttl_s
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def check_reference(self, reference: str) -> None:
        """Refuse a reference to an unknown scheme (on save, as a 400)."""
        scheme, _ = parse_reference(reference)
        if scheme not in self.sources:
            raise InvalidRequest(
                f"credential reference '{reference}' uses unknown scheme '{scheme}'; "
                f"configured: {', '.join(sorted(self.sources))}",
                param="credentials",
            )

    async def get(self, reference: str) -> str:
        cached = self._cache.get(reference)
        if cached is not None and not self._stale(reference, cached):
            return cached.value
        lock = self._locks.setdefault(reference, asyncio.Lock())
        async with lock:  # one fetch per reference, however many requests wait
            cached = self._cache.get(reference)
            if cached is not None and not self._stale(reference, cached):
                return cached.value
            scheme, path = parse_reference(reference)
            source = self.sources.get(scheme)
            if source is None:
                raise SecretError(f"no credential source for scheme '{scheme}' ({reference})")
            # Stamp before fetching: a change during the fetch still counts as newer.
            started = time.time()
            value = await source.fetch(path)
            self._cache[reference] = _Cached(value, started)
            return value

    def _stale(self, reference: str, cached: _Cached) -> bool:
        if time.time() - cached.fetched_at > self.ttl_s:
            return True
        scheme, path = reference.split(":", 1)
        return self.sources[scheme].changed(path, cached.fetched_at)

    async def resolves(self, reference: str) -> tuple[bool, str | None]:
        """Whether a reference resolves now, and if not, why (never the value)."""
        try:
            await self.get(reference)
        except HeadraceError as error:
            return False, error.message
        except Exception as error:  # a broken source must not break the listing
            return False, f"{type(error).__name__}"
        return True, None

    async def aclose(self) -> None:
        """Close the sources that hold connections (Vault's HTTP client, AWS's client)."""
        for source in self.sources.values():
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    def invalidate(self, reference: str | None = None) -> None:
        if reference is None:
            self._cache.clear()
        else:
            self._cache.pop(reference, None)
