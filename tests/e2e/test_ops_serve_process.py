"""`dci-bridge serve` as a real process: graceful shutdown, JSON logs, several workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dci_bridge.cli import main
from dci_bridge.records.seed import KnownPersons, seed_store
from dci_bridge.registry.audit import AuditFilter, read_events
from tests.delivery_receivers import RecordingReceiver
from tests.e2e.conftest import SEED, envelope, item, sender_for
from tests.security_support import DciTestClient
from tests.servers import free_port, serve_asgi, wait_until_serving

pytestmark = pytest.mark.slow
TERMINATED = (0, -signal.SIGTERM)
"""uvicorn re-raises SIGTERM after a clean shutdown, so the exit status says "terminated"."""


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    wait_until_serving(f"{base}/ready", proc)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """Start `dci-bridge serve` processes; each is terminated (if still running) at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(url: str, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], str, Path]:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")}
        environ.update(
            DCI_BRIDGE_DATA_DIR=str(tmp_path / f"data-{port}"),
            DCI_BRIDGE_AUDIT__FLUSH_INTERVAL_MS="60000",  # only the shutdown flush writes
            **env,
        )
        command = [sys.executable, "-m", "dci_bridge", "serve", "--port", str(port)]
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*command, "--database-url", url, *args],
                env=environ,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the end kills the workers too
            )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, proc)
        return proc, base, log

    yield start
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the server and any worker it left behind
        proc.wait(10)


def test_sigterm_finishes_the_request_in_flight_and_writes_its_audit_row(
    serve: object, seeded_sqlite_url: str, known: KnownPersons
) -> None:
    client = sender_for(seeded_sqlite_url)
    proc, base, log = serve(seeded_sqlite_url)  # type: ignore[operator]
    request = envelope(item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    body = client.sign(request)
    message_id = request["header"]["message_id"]
    port = int(base.rsplit(":", 1)[1])
    head = (
        f"POST /registry/sync/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {client.token(base)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(head + body[:40])  # a slow client: the request is in flight
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert proc.poll() is None, "the server must wait for the request in flight"
        with pytest.raises(ConnectionRefusedError):  # no new connections once shutting down
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        slow.sendall(body[40:])
        answer = _read_response(slow)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    payload = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert payload["message"]["search_response"][0]["status"] == "succ"
    assert proc.wait(30) in TERMINATED

    rows = list(read_events(seeded_sqlite_url, AuditFilter(sender_id="spp.example.org")))
    assert message_id in [row["message_id"] for row in rows], "audit row lost at shutdown"

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("msg") == "request"]
    assert any(r["message_id"] == message_id and r["status"] == 200 for r in requests)
    assert "Application shutdown complete." in log.read_text()
    assert known.child_brn not in log.read_text()


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def test_two_workers_share_one_metrics_view(
    serve: object, seeded_sqlite_url: str, known: KnownPersons
) -> None:
    client = sender_for(seeded_sqlite_url)
    proc, base, _ = serve(seeded_sqlite_url, "--workers", "2")  # type: ignore[operator]
    searches = 12
    for _ in range(searches):  # new connection each time: spread over both workers
        body = envelope(item("idtype-value", {"type": "BRN", "value": known.child_brn}))
        with client.authenticated(base, timeout=10) as http:
            assert http.post("/registry/sync/search", json=body).status_code == 200
    pattern = re.compile(
        r'^dci_bridge_http_requests_total\{method="POST",route="/registry/sync/search",'
        r'status="200"\} (\S+)$',
        re.MULTILINE,
    )
    for _ in range(4):  # whichever worker answers the scrape reports every worker's count
        text = httpx.get(f"{base}/metrics", timeout=10).text
        match = pattern.search(text)
        assert match is not None, text[:2000]
        assert float(match.group(1)) == searches
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) in TERMINATED


def test_serve_refuses_bad_configuration_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [k for k in os.environ if k.startswith("DCI_BRIDGE_")]:
        monkeypatch.delenv(key)  # the test runner's own DCI_BRIDGE_TEST_* variables
    monkeypatch.setenv("DCI_BRIDGE_SERVER__WORKERS", "zero")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "DCI_BRIDGE_SERVER__WORKERS='zero': expected a whole number" in result.output


@dataclass
class StallFirst:
    """A callback receiver whose first POST never gets an answer (until `release`); later
    POSTs go to `inner`."""

    inner: RecordingReceiver
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.stalled.is_set():
            self.stalled.set()
            await asyncio.to_thread(self.release.wait, 180)
            return
        await self.inner(scope, receive, send)


def test_sigterm_releases_the_delivery_lease_so_another_process_delivers_at_once(
    serve: object, tmp_path: Path, known: KnownPersons
) -> None:
    url = f"sqlite:///{tmp_path / 'leases.sqlite3'}"
    asyncio.run(seed_store(url, persons=200, seed=SEED))
    client = DciTestClient.register(url)
    receiver = StallFirst(RecordingReceiver())
    with serve_asgi(receiver) as receiver_base:
        env = {
            "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
            "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": f"{receiver_base}/registry/",
            "DCI_BRIDGE_DELIVERY__TIMEOUT_S": "120",  # the attempt would hang for 2 min
            "DCI_BRIDGE_DELIVERY__LEASE_S": "300",  # and its lease hold for 5 min
        }
        first, base, _ = serve(url, **env)  # type: ignore[operator]
        body = envelope(
            item("idtype-value", {"type": "BRN", "value": known.child_brn}),
            sender_uri=f"{receiver_base}/registry/on-search",
        )
        with client.authenticated(base, timeout=10) as http:
            answer = http.post("/registry/search", json=body)
        assert answer.status_code == 200, answer.text[:300]
        correlation_id = answer.json()["message"]["correlation_id"]
        assert receiver.stalled.wait(60), "the on-search attempt did not start"

        first.send_signal(signal.SIGTERM)
        assert first.wait(60) in TERMINATED
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                jobs = conn.execute(
                    sa.text(
                        "SELECT state, lease_owner, lease_until FROM outbox_job "
                        "WHERE correlation_id = :c AND target_url IS NOT NULL"
                    ),
                    {"c": correlation_id},
                ).all()
        finally:
            engine.dispose()
        assert [tuple(job) for job in jobs] == [("pending", None, None)], jobs

        # the next process takes the job now, not when the 5 min lease would have ended
        second, _, _ = serve(url, **env)  # type: ignore[operator]
        delivered = [
            b
            for b in wait_for_bodies(receiver.inner, timeout_s=60)
            if json.loads(b)["message"].get("correlation_id") == correlation_id
        ]
        receiver.release.set()
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) in TERMINATED
    assert len(delivered) == 1


def wait_for_bodies(receiver: RecordingReceiver, timeout_s: float) -> list[bytes]:
    deadline = time.monotonic() + timeout_s
    while not receiver.bodies():
        if time.monotonic() > deadline:
            raise AssertionError("no callback was delivered")
        time.sleep(0.05)
    return receiver.bodies()
