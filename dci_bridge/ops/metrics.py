"""Prometheus metrics of the bridge, and the functions other packages call to record theirs.

All metrics live in prometheus-client's default registry and are named `dci_bridge_*`.
Recording is cheap (a dict look-up and a lock-free add in the common case) because the HTTP
middleware runs on the sync-search hot path.

Several worker processes (`server.workers` > 1): `dci-bridge serve` points
`PROMETHEUS_MULTIPROC_DIR` at an empty directory before the workers start, each worker
writes its values to files there, and `/metrics` (answered by whichever worker gets the
scrape) sums them (`render`). Gauges then report the most recent value any worker set.

Functions for other packages (see docs/INTERFACES in /work/notes and docs/operations.md):
- `observe_request(method, route, status, seconds)`: the HTTP middleware (api/).
- `record_search_results(status, records)`: per search item, from the search use case.
- `set_outbox_depth(state, count)`: the delivery worker, after counting jobs per state.
- `record_delivery_attempt(outcome, seconds)`: the delivery sender, once per attempt.
- `observe_upstream(operation, outcome, seconds)`: the OpenCRVS client, once per call.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "observe_request",
    "observe_upstream",
    "record_delivery_attempt",
    "record_search_results",
    "render",
    "set_outbox_depth",
]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "dci_bridge_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "dci_bridge_http_request_duration_seconds",
    "Time from request start to the last response byte, by method, route template, status.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
SEARCH_ITEMS = Counter(
    "dci_bridge_search_items",
    "Search request items answered, by item status (succ, rjct).",
    ["status"],
)
SEARCH_RECORDS = Counter(
    "dci_bridge_search_records_returned",
    "Person records returned by search items.",
)
OUTBOX_DEPTH = Gauge(
    "dci_bridge_outbox_jobs",
    "Outbox jobs by state, as last counted by a delivery worker.",
    ["state"],
    multiprocess_mode="mostrecent",
)
DELIVERY_ATTEMPTS = Counter(
    "dci_bridge_delivery_attempts",
    "Callback delivery attempts, by outcome (delivered, retry, gone, dead, error...).",
    ["outcome"],
)
DELIVERY_LATENCY = Histogram(
    "dci_bridge_delivery_attempt_duration_seconds",
    "Duration of callback delivery attempts.",
    buckets=_LATENCY_BUCKETS,
)
UPSTREAM_CALLS = Counter(
    "dci_bridge_upstream_requests",
    "Calls to OpenCRVS, by operation and outcome (ok, error, timeout, circuit_open...).",
    ["operation", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "dci_bridge_upstream_request_duration_seconds",
    "Duration of calls to OpenCRVS, by operation.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)

_request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one HTTP request. `route` is the route template, never the raw path."""
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        text = str(status)
        children = (
            HTTP_REQUESTS.labels(method, route, text),
            HTTP_LATENCY.labels(method, route, text),
        )
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, kept: `labels()` takes a lock and builds its key on every
    call, several times per request on the hot paths."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def record_search_results(status: str, records: int) -> None:
    """One answered search item and how many records it returned."""
    _child(SEARCH_ITEMS, status).inc()
    if records:
        SEARCH_RECORDS.inc(records)


def set_outbox_depth(state: str, count: int) -> None:
    """The number of outbox jobs in `state` (pending, in_flight, done, dead...)."""
    OUTBOX_DEPTH.labels(state).set(count)


def record_delivery_attempt(outcome: str, seconds: float | None = None) -> None:
    """One callback delivery attempt and, when known, how long it took."""
    _child(DELIVERY_ATTEMPTS, outcome).inc()
    if seconds is not None:
        DELIVERY_LATENCY.observe(seconds)


def observe_upstream(operation: str, outcome: str, seconds: float) -> None:
    """One call to OpenCRVS (`operation`: token, search, fetch...)."""
    _child(UPSTREAM_CALLS, operation, outcome).inc()
    _child(UPSTREAM_LATENCY, operation).observe(seconds)


def multiprocess_dir() -> str | None:
    """The directory of per-worker metric files, when this process runs in that mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """The metrics in the Prometheus text format (all workers' values in multiprocess mode)."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
