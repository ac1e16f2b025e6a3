"""Prometheus metrics. Label values are bounded (route templates, tool names, platforms): never ids
or arguments, never credentials."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Inbound HTTP request duration, by method, route template and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    "sophia_tool_calls_total",
    "Tool calls (MCP and REST) by tool and outcome (ok or an error type).",
    ["tool", "outcome"],
    registry=REGISTRY,
)
TOOL_CALL_DURATION = Histogram(
    "sophia_tool_call_duration_seconds",
    "Tool call duration by tool.",
    ["tool"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_REQUESTS = Counter(
    "sophia_upstream_requests_total",
    "Requests sent to a platform API, by platform and HTTP status (or timeout/error).",
    ["platform", "status"],
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "sophia_upstream_errors_total",
    "Platform API answers that were errors, by platform and error type (upstream-unauthorized, rate-limited, "
    "upstream-timeout, ...), whatever HTTP status carried them (Slack's are 200, Linear's 400).",
    ["platform", "type"],
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "sophia_upstream_request_duration_seconds",
    "Platform API request duration by platform.",
    ["platform"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CIRCUIT_OPEN = Gauge(
    "sophia_circuit_open",
    "1 while a platform's circuit breaker is open.",
    ["platform"],
    registry=REGISTRY,
)
CACHE_LOOKUPS = Counter(
    "sophia_cache_lookups_total",
    "Cache lookups by platform and result (fresh, stale, miss).",
    ["platform", "result"],
    registry=REGISTRY,
)
DATA_AGE = Gauge(
    "sophia_data_age_seconds",
    "Age of the data last served, by platform.",
    ["platform"],
    registry=REGISTRY,
)

_children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}


def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: on a cache hit the label lookup costs more than the
    observation. Label values are bounded (see above), so this stays small."""
    found = _children.get((metric, labels))
    if found is None:
        found = _children[(metric, labels)] = metric.labels(*labels)
    return found
