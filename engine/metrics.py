"""Prometheus metrics shared by every part of Headrace.

Metrics live in the process-wide default registry, as prometheus_client
intends; each part declares its own here so names stay consistent and
`/metrics` exposes them all.
"""

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)

http_requests = Counter(
    "headrace_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
http_latency = Histogram(
    "headrace_http_request_duration_seconds",
    "Time to produce the response head, by route template and status",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
http_in_flight = Gauge("headrace_http_requests_in_flight", "HTTP requests being handled")

degraded = Gauge(
    "headrace_degraded",
    "1 while a shared dependency is unreachable and Headrace runs on local fallbacks",
    ["component"],
)

upstream_requests = Counter(
    "headrace_upstream_requests_total",
    "Calls to upstream deployments, by outcome",
    ["model", "deployment", "outcome"],
)
upstream_latency = Histogram(
    "headrace_upstream_latency_seconds",
    "Upstream call time (to the full response, or to the first token of a stream)",
    ["model", "deployment"],
    buckets=LATENCY_BUCKETS,
)
circuit_state = Gauge(
    "headrace_circuit_open", "1 while a deployment's circuit is open or half-open", ["deployment"]
)
circuit_opened = Counter(
    "headrace_circuit_opened_total", "Times a deployment's circuit opened", ["deployment"]
)
fallbacks = Counter(
    "headrace_fallbacks_total", "Fallbacks from one chain step to the next", ["target"]
)
retries = Counter("headrace_retries_total", "Retried upstream attempts", ["target"])
