"""Two `dci-bridge serve` processes on one PostgreSQL: async searches sent through both are
each answered by exactly one on-search callback (the outbox lease, not the process, decides
who delivers), none is lost, and each is audited once.

Notifications through both replicas are not covered yet: the notify feature had not landed
when this test was written (see docs/operations.md, Scaling)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from dci_bridge.records.seed import KnownPersons
from dci_bridge.registry.audit import AuditFilter, read_events
from tests.delivery_receivers import RecordingReceiver
from tests.e2e.conftest import envelope, item, sender_for
from tests.servers import free_port, serve_asgi

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SEARCHES = 24


def _start(
    url: str, data_dir: Path, receiver_base: str, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")}
    env.update(
        DCI_BRIDGE_DATA_DIR=str(data_dir),  # shared: both replicas sign with the same keys
        DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES="true",
        DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES=f"{receiver_base}/registry/",
        DCI_BRIDGE_DELIVERY__POLL_INTERVAL_S="0.1",
    )
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dci_bridge",
                "serve",
                "--port",
                str(port),
                "--database-url",
                url,
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("replica did not become ready")
        time.sleep(0.1)


@pytest.fixture
def replicas(
    seeded_pg_url: str, tmp_path: Path
) -> Iterator[tuple[list[str], RecordingReceiver, str]]:
    sender_for(seeded_pg_url)
    receiver = RecordingReceiver()
    procs: list[subprocess.Popen[bytes]] = []
    with serve_asgi(receiver) as receiver_base:
        try:
            bases = []
            for index in range(2):  # one after the other: the first creates the keys
                proc, base = _start(
                    seeded_pg_url, tmp_path / "data", receiver_base, tmp_path / f"r{index}.log"
                )
                procs.append(proc)
                bases.append(base)
            yield bases, receiver, f"{receiver_base}/registry/on-search"
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def test_async_searches_through_two_replicas_are_each_delivered_once(
    replicas: tuple[list[str], RecordingReceiver, str], seeded_pg_url: str, known: KnownPersons
) -> None:
    bases, receiver, callback = replicas
    client = sender_for(seeded_pg_url)
    correlations: list[str] = []
    message_ids: list[str] = []
    sessions = [client.authenticated(base, timeout=10) for base in bases]
    try:
        for number in range(SEARCHES):
            http = sessions[number % 2]
            body = envelope(
                item("idtype-value", {"type": "BRN", "value": known.child_brn}),
                sender_uri=callback,
            )
            body["message"]["transaction_id"] = f"txn-{uuid.uuid4()}"
            message_ids.append(body["header"]["message_id"])
            response = http.post("/registry/search", json=body)
            assert response.status_code == 200, response.text[:300]
            correlations.append(response.json()["message"]["correlation_id"])
    finally:
        for session in sessions:
            session.close()

    def delivered() -> Counter[str]:
        seen: Counter[str] = Counter()
        for raw in receiver.bodies():
            decoded = msgspec.json.decode(raw)
            if decoded["header"]["action"] == "on-search":
                seen[decoded["message"]["correlation_id"]] += 1
        return seen

    deadline = time.monotonic() + 60
    while set(delivered()) != set(correlations) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # a duplicate delivery would arrive now
    counts = delivered()
    assert set(counts) == set(correlations), "lost callbacks"
    assert all(count == 1 for count in counts.values()), f"duplicates: {counts.most_common(3)}"
    assert len(correlations) == len(set(correlations)) == SEARCHES

    # every async search is audited once, by whichever replica's worker ran it
    def audited() -> Counter[str]:
        rows = read_events(seeded_pg_url, AuditFilter(sender_id=client.sender_id))
        return Counter(r["message_id"] for r in rows if r["detail"].get("mode") == "async")

    deadline = time.monotonic() + 10
    while set(audited()) < set(message_ids) and time.monotonic() < deadline:
        time.sleep(0.1)
    counts = audited()
    assert all(counts[m] == 1 for m in message_ids), "async searches missing from the audit"
