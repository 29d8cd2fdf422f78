"""Webhooks: POST a finished operation to its `webhook_url`, signed and retried.

The signature header is `X-Headrace-Signature: t=<unix>,v1=<hex>` where `<hex>`
is HMAC-SHA256 over `f"{t}.{body}"` with the configured secret. Targets are
SSRF-checked by the resolver the connection itself uses (see `connectors.web`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from connectors.web import BlockedAddress, SafeResolver, is_internal
from engine.errors import InvalidRequest
from engine.logs import get_logger
from engine.operations.store import OperationStore, operation_body
from engine.store.tables import OperationRow

SIGNATURE_HEADER = "X-Headrace-Signature"
log = get_logger(__name__)


def sign(secret: str, body: bytes | str, timestamp: int | None = None) -> str:
    """The signature header value for `body`, sent at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    text = body.decode() if isinstance(body, bytes) else body
    digest = hmac.new(secret.encode(), f"{t}.{text}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes | str, tolerance_s: float = 300.0,
                     *, now: float | None = None) -> bool:
    """True when `header` signs `body` with `secret` and is at most `tolerance_s` old."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def validate_webhook_url(url: str, *, allow_private: bool = False) -> str:
    """Reject what can be rejected before sending: bad schemes, literal internal IPs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise InvalidRequest("webhook_url must be an http(s) URL with a host",
                             param="webhook_url")
    if not allow_private:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if literal is not None and is_internal(str(literal)):
            raise InvalidRequest("webhook_url points at an internal address",
                                 param="webhook_url", code="url_not_allowed")
    return url


class _Retry(Exception):
    """An attempt failed in a way worth retrying (network error, 5xx, 429)."""


class WebhookSender:
    def __init__(self, store: OperationStore, secret: str, *, max_attempts: int = 5,
                 backoff_s: float = 1.0, backoff_max_s: float = 60.0, timeout_s: float = 10.0,
                 allow_private: bool = False):
        self.store = store
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.allow_private = allow_private

    async def deliver(self, row: OperationRow) -> bool:
        """POST the operation to its webhook; every attempt is recorded. True once a
        2xx answer came back."""
        if not row.webhook_url:
            return False
        url = row.webhook_url
        body = orjson.dumps(operation_body(row))
        try:
            validate_webhook_url(url, allow_private=self.allow_private)
        except InvalidRequest as error:
            await self.store.record_delivery(row.id, 1, error=error.message)
            return False
        connector = aiohttp.TCPConnector(
            resolver=None if self.allow_private else SafeResolver())
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        attempt = 0
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def once() -> bool:
                nonlocal attempt
                attempt += 1
                headers = {"Content-Type": "application/json",
                           SIGNATURE_HEADER: sign(self.secret, body)}
                try:
                    async with session.post(url, data=body, headers=headers,
                                            allow_redirects=False) as response:
                        status = response.status
                except BlockedAddress as error:
                    await self.store.record_delivery(row.id, attempt, error=f"blocked: {error}")
                    return False
                except (aiohttp.ClientError, TimeoutError) as error:
                    await self.store.record_delivery(
                        row.id, attempt, error=f"{type(error).__name__}: {error}")
                    raise _Retry from error
                await self.store.record_delivery(row.id, attempt, status_code=status)
                if 200 <= status < 300:
                    return True
                if status >= 500 or status == 429:
                    raise _Retry
                return False

            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_max_s),
                retry=retry_if_exception_type(_Retry),
            )
            try:
                delivered: Any = await retrying(once)
            except RetryError:
                delivered = False
        if not delivered:
            log.warning("webhook delivery failed", operation_id=row.id, attempts=attempt)
        return bool(delivered)
