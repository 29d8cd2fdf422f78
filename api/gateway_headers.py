"""Response headers that say how the gateway served a request."""

from __future__ import annotations

import time

from quart import g

from engine.gateway.executor import Report


def gateway_headers(report: Report) -> dict[str, str]:
    """`x-headrace-overhead-ms` is Headrace's own time: the request's time so far
    minus time spent in upstream calls and in backoff waits."""
    elapsed = time.perf_counter() - g.started
    overhead_ms = max(0.0, (elapsed - report.upstream_s - report.waited_s) * 1000)
    return {
        "x-headrace-deployment": report.deployment.key if report.deployment else "",
        "x-headrace-attempts": str(len(report.attempts)),
        "x-headrace-fallbacks": str(report.fallbacks),
        "x-headrace-overhead-ms": f"{overhead_ms:.3f}",
    }
