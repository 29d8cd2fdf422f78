"""Fetch a URL a user gave, safely: no private, loopback, link-local or other
internal targets (unless configured), bounded size and time.

The check happens in the resolver the connection itself uses, so a name that
resolves to a public address when checked and to an internal one when
connected (DNS rebinding) cannot slip through, and every redirect hop is
checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from engine.errors import InvalidRequest


def is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


class BlockedAddress(aiohttp.ClientError):
    pass


class SafeResolver(AbstractResolver):
    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[dict[str, Any]]:
        answers = await self._resolver.resolve(host, port, family)
        blocked = [a["host"] for a in answers if is_internal(a["host"])]
        if blocked:
            raise BlockedAddress(f"{host} resolves to an internal address ({blocked[0]})")
        return answers

    async def close(self) -> None:
        await self._resolver.close()


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    content_type: str | None
    url: str
    etag: str | None


async def fetch(url: str, *, allow_private: bool = False, max_bytes: int = 50_000_000,
                timeout_s: float = 30.0, max_redirects: int = 5) -> Fetched:
    """GET `url`; an unsafe target, an error status or an oversize body is a 400."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"url must be http(s) with a host: {url[:200]}", param="url")
    if not allow_private:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if literal is not None and is_internal(str(literal)):
            raise InvalidRequest(f"url points at an internal address ({parts.hostname}); "
                                 "fetching internal addresses is disabled", param="url",
                                 code="url_not_allowed")
    connector = aiohttp.TCPConnector(resolver=None if allow_private else SafeResolver())
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            async with session.get(url, max_redirects=max_redirects) as response:
                if response.status >= 400:
                    raise InvalidRequest(f"fetching {url[:200]} answered {response.status}",
                                         param="url", code="url_fetch_failed")
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise InvalidRequest(f"{url[:200]} is larger than {max_bytes} bytes",
                                         param="url", code="url_too_large")
                body = bytearray()
                async for piece in response.content.iter_chunked(65_536):
                    body += piece
                    if len(body) > max_bytes:
                        raise InvalidRequest(f"{url[:200]} is larger than {max_bytes} bytes",
                                             param="url", code="url_too_large")
                return Fetched(bytes(body), response.content_type or None, str(response.url),
                               response.headers.get("ETag"))
    except BlockedAddress as error:
        raise InvalidRequest(f"url not allowed: {error}", param="url",
                             code="url_not_allowed") from None
    except (aiohttp.ClientError, TimeoutError) as error:
        raise InvalidRequest(f"could not fetch {url[:200]}: {type(error).__name__}: {error}"[:400],
                             param="url", code="url_fetch_failed") from None
