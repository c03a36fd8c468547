"""The metrics other packages feed: OpenCRVS calls (upstream client), callback delivery
attempts (delivery worker) and outbox depth (counted when /metrics is scraped)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from dci_bridge.records.seed import known_persons
from dci_bridge.upstream.simulator import SEARCH_CLIENT
from tests.e2e.conftest import envelope, item
from tests.e2e.test_upstream_source_parity import opencrvs_settings, serve_bridge
from tests.simulators import SEED, RunningSimulator, running_simulator

KNOWN = known_persons(SEED)


def sample(text: str, name: str, **labels: str) -> float:
    """A sample's value in Prometheus text (0 when absent)."""
    for match in re.finditer(rf"^{name}(?:\{{(.*)\}})? (\S+)$", text, re.MULTILINE):
        if dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or "")) == labels:
            return float(match.group(2))
    return 0.0


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    unlimited = msgspec.structs.replace(SEARCH_CLIENT, daily_quota=10**9)
    with running_simulator(persons=200, clients=(unlimited,)) as running:
        yield running


def test_upstream_calls_are_counted_by_outcome(sim: RunningSimulator, tmp_path: Path) -> None:
    settings = opencrvs_settings(
        sim.url, f"sqlite:///{tmp_path / 'b.sqlite3'}", tmp_path, timeout_s="0.5"
    )
    body = item("idtype-value", {"type": "BRN", "value": KNOWN.child_brn})
    name = "dci_bridge_upstream_requests_total"
    with serve_bridge(settings) as bridge:
        before = httpx.get(f"{bridge.url}/metrics").text
        assert bridge.http.post("/registry/sync/search", json=envelope(body)).status_code == 200
        sim.app.set_faults(latency_ms=1500)
        try:
            assert bridge.http.post("/registry/sync/search", json=envelope(body)).status_code == 504
        finally:
            sim.app.set_faults(reset=True)
        after = httpx.get(f"{bridge.url}/metrics").text
    ok = sample(after, name, operation="graphql", outcome="ok")
    assert ok > sample(before, name, operation="graphql", outcome="ok")
    timeouts = sample(after, name, operation="graphql", outcome="timeout")
    assert timeouts > sample(before, name, operation="graphql", outcome="timeout")
    histogram = "dci_bridge_upstream_request_duration_seconds_count"
    assert sample(after, histogram, operation="graphql") > 0
    assert KNOWN.child_brn not in after


def test_delivery_attempts_and_outbox_depth(tmp_path: Path, seeded_sqlite_url: str) -> None:
    from dci_bridge.api.app import create_app
    from dci_bridge.settings import Settings
    from tests.delivery_receivers import RecordingReceiver
    from tests.e2e.conftest import sender_for
    from tests.servers import serve_asgi

    client = sender_for(seeded_sqlite_url)
    receiver = RecordingReceiver()
    with serve_asgi(receiver) as receiver_base:
        settings = Settings.from_env(
            {
                "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
                "DCI_BRIDGE_DATA_DIR": str(tmp_path),
                "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
                "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": f"{receiver_base}/registry/",
            }
        )
        with serve_asgi(create_app(settings)) as base:
            before = httpx.get(f"{base}/metrics").text
            body = envelope(
                item("idtype-value", {"type": "BRN", "value": KNOWN.child_brn}),
                sender_uri=f"{receiver_base}/registry/on-search",
            )
            with client.authenticated(base, timeout=10) as http:
                assert http.post("/registry/search", json=body).status_code == 200
            deadline = time.monotonic() + 20
            while not receiver.bodies() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert receiver.bodies(), "no callback arrived"
            name = "dci_bridge_delivery_attempts_total"
            for _ in range(100):  # the attempt is counted when the worker records it
                after = httpx.get(f"{base}/metrics").text
                if sample(after, name, outcome="done") > sample(before, name, outcome="done"):
                    break
                time.sleep(0.05)
    assert sample(after, name, outcome="done") > sample(before, name, outcome="done")
    assert sample(after, "dci_bridge_outbox_jobs", state="done") >= 1
    assert re.search(r'^dci_bridge_outbox_jobs\{state="pending"\} ', after, re.MULTILINE)
