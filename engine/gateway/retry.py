"""Which failures are retried, which fall back, and how long to wait.

- retry: timeouts, connection failures, malformed or broken streams (before
  the first token), upstream 408/409/429/5xx. Backoff is exponential with full
  jitter, capped; a Retry-After is honoured (a longer one than the policy
  allows skips to the fallback instead of waiting).
- fallback: no use retrying this model now (its circuits are open, it is
  saturated, it missed its latency limit, the upstream refused our credentials
  or does not know the model): go to the next chain step.
- fatal: the request itself is wrong (400); no other model would do better.
"""

from __future__ import annotations

import random
from typing import Literal

from tenacity import RetryCallState
from tenacity.wait import wait_base

from engine.errors import (
    HeadraceError,
    InvalidRequest,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from engine.schemas.models import RetryPolicy

Decision = Literal["retry", "fallback", "fatal"]
RETRYABLE_STATUS = frozenset({408, 409, 429})


def classify(error: BaseException) -> Decision:
    if isinstance(error, InvalidRequest):
        return "fatal"
    if isinstance(error, UpstreamTimeout):
        return "fallback" if error.code == "latency_limit" else "retry"
    if isinstance(error, ServiceUnavailable):
        return "fallback"
    if isinstance(error, UpstreamError):
        status = error.status
        if status is None or status >= 500 or status in RETRYABLE_STATUS:
            return "retry"
        return "fallback"
    if isinstance(error, HeadraceError):
        return "fallback"  # e.g. a credential that does not resolve
    return "fatal"


def counts_against_deployment(error: BaseException) -> bool:
    """Failures that say the deployment is unhealthy (and feed its circuit breaker)."""
    if isinstance(error, UpstreamTimeout):
        return True
    if isinstance(error, UpstreamError):
        return error.status is None or error.status >= 500 or error.status in RETRYABLE_STATUS
    return False


def retry_after(error: BaseException | None) -> float | None:
    return getattr(error, "retry_after", None) if error is not None else None


def should_retry(error: BaseException, policy: RetryPolicy) -> bool:
    if classify(error) != "retry":
        return False
    delay = retry_after(error)
    return delay is None or delay * 1000 <= policy.max_retry_after_ms


class Backoff(wait_base):
    """Retry-After when the upstream sent one, else full jitter: U(0, min(cap, base·2ⁿ))."""

    def __init__(self, policy: RetryPolicy):
        self.base_s = policy.base_delay_ms / 1000
        self.cap_s = policy.max_delay_ms / 1000

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        delay = retry_after(outcome.exception() if outcome else None)
        if delay is not None:
            return delay
        ceiling = min(self.cap_s, self.base_s * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
