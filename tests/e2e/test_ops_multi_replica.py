"""Two `dci-bridge serve` processes on one PostgreSQL: async searches sent through both are
each answered by exactly one on-search callback (the outbox lease, not the process, decides
who delivers), none is lost, and each is audited once. With subscriptions made through both
replicas, signed OpenCRVS webhooks posted to both (each one to both at once, as a retrying
OpenCRVS may, plus the same event as a second delivery) give exactly one notify per
subscription and registration, while async searches run through both replicas too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.records.mapped import RecordEvent
from dci_bridge.records.seed import KnownPersons, seed_store
from dci_bridge.registry.audit import AuditFilter, read_events
from tests.delivery_receivers import RecordingReceiver
from tests.e2e.conftest import SEED, envelope, item, sender_for
from tests.security_support import DciTestClient
from tests.servers import free_port, serve_asgi, stop_process, wait_until_serving
from tests.subscriptions_support import (
    SHA_SECRET,
    bundles_of,
    post_webhook,
    subscribe_envelope,
    wait_for,
    webhook_body,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SEARCHES = 24


def _start(
    url: str, data_dir: Path, receiver_base: str, log: Path, **extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")}
    env.update(
        DCI_BRIDGE_DATA_DIR=str(data_dir),  # shared: both replicas sign with the same keys
        DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES="true",
        DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES=f"{receiver_base}/registry/",
        DCI_BRIDGE_DELIVERY__POLL_INTERVAL_S="0.1",
        **extra,
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
    wait_until_serving(f"{base}/ready", proc, exited=lambda: log.read_text()[-2000:])
    return proc, base


@contextlib.contextmanager
def _two_replicas(
    url: str, tmp_path: Path, receiver: RecordingReceiver, **extra: str
) -> Iterator[tuple[list[str], str]]:
    """Two `serve` processes on `url` sharing one data directory; yields their base URLs and
    the receiver's base URL; SIGTERM at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    with serve_asgi(receiver) as receiver_base:
        try:
            bases = []
            for index in range(2):  # one after the other: the first creates the keys
                proc, base = _start(
                    url, tmp_path / "data", receiver_base, tmp_path / f"r{index}.log", **extra
                )
                procs.append(proc)
                bases.append(base)
            yield bases, receiver_base
        finally:
            for proc in procs:  # both shut down at once, then each is waited for
                proc.terminate()
            for proc in procs:
                stop_process(proc)


@pytest.fixture
def replicas(
    seeded_pg_url: str, tmp_path: Path
) -> Iterator[tuple[list[str], RecordingReceiver, str]]:
    sender_for(seeded_pg_url)
    receiver = RecordingReceiver()
    with _two_replicas(seeded_pg_url, tmp_path, receiver) as (bases, receiver_base):
        yield bases, receiver, f"{receiver_base}/registry/on-search"


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


NOTIFY_SENDER = "sp.example.org"
BIRTHS = 10


def _callbacks(receiver: RecordingReceiver, action: str) -> list[dict[str, Any]]:
    found = []
    for raw in receiver.bodies():
        decoded: dict[str, Any] = msgspec.json.decode(raw)
        if decoded["header"]["action"] == action:
            found.append(decoded)
    return found


def _notified(receiver: RecordingReceiver) -> Counter[tuple[str, str]]:
    """(subscription code, the notified records) of every notify event received."""
    seen: Counter[tuple[str, str]] = Counter()
    for body in _callbacks(receiver, "notify"):
        for event in body["message"]["notify_event"]:
            records = msgspec.json.encode(event["data"]["reg_records"]).decode()
            seen[event["subscription_code"], records] += 1
    return seen


def test_webhooks_and_async_searches_through_two_replicas_notify_once(
    pg_database: str, tmp_path: Path, known: KnownPersons
) -> None:
    asyncio.run(seed_store(pg_database, persons=200, seed=SEED))
    client = DciTestClient.register(pg_database, NOTIFY_SENDER)
    receiver = RecordingReceiver()
    births = [bundle for bundle, _ in bundles_of(RecordEvent.BIRTH)[:BIRTHS]]
    assert len(births) == BIRTHS
    with _two_replicas(
        pg_database,
        tmp_path,
        receiver,
        DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET=SHA_SECRET,
    ) as (bases, receiver_base):
        sessions = [client.authenticated(base, timeout=20) for base in bases]
        hooks = httpx.Client(timeout=20)
        try:
            codes = []
            for http in sessions:  # one subscription through each replica
                response = http.post(
                    "/registry/subscribe",
                    json=subscribe_envelope(
                        sender_id=NOTIFY_SENDER, sender_uri=f"{receiver_base}/registry/notify"
                    ),
                )
                assert response.status_code == 200, response.text[:300]
            on_subscribe = wait_for(
                lambda: len(found := _callbacks(receiver, "on-subscribe")) == 2 and found,
                what="two on-subscribe callbacks",
            )
            for body in on_subscribe:
                codes.append(body["message"]["subscribe_response"][0]["subscriptions"][0]["code"])
            assert len(set(codes)) == 2

            correlations: list[str] = []
            with ThreadPoolExecutor(4) as pool:
                for number, bundle in enumerate(births):
                    # the same signed delivery to both replicas at once (an OpenCRVS retry),
                    # and the same event sent again as a new delivery (new id, new digest)
                    body, again = webhook_body(bundle), webhook_body(bundle)
                    posts = [pool.submit(post_webhook, hooks, base, body) for base in bases]
                    posts.append(pool.submit(post_webhook, hooks, bases[number % 2], again))
                    answers = sorted(post.result().status_code for post in posts)
                    assert answers == [200, 202, 202], answers  # one of the same is a duplicate
                    # and an async search through one of them
                    search = envelope(
                        item("idtype-value", {"type": "BRN", "value": known.child_brn}),
                        sender_id=NOTIFY_SENDER,
                        sender_uri=f"{receiver_base}/registry/on-search",
                    )
                    search["message"]["transaction_id"] = f"txn-{uuid.uuid4()}"
                    response = sessions[number % 2].post("/registry/search", json=search)
                    assert response.status_code == 200, response.text[:300]
                    correlations.append(response.json()["message"]["correlation_id"])

            expected = BIRTHS * len(codes)
            wait_for(
                lambda: (
                    len(_notified(receiver)) >= expected
                    and len(_callbacks(receiver, "on-search")) >= BIRTHS
                ),
                timeout_s=60,
                what=f"{expected} notifies and {BIRTHS} on-search callbacks",
            )
            time.sleep(1.5)  # a duplicate delivery would arrive now
        finally:
            hooks.close()
            for session in sessions:
                session.close()

    notified = _notified(receiver)
    assert len(notified) == expected, "lost or unexpected notifies"
    assert {code for code, _ in notified} == set(codes)
    assert all(count == 1 for count in notified.values()), notified.most_common(2)
    notify_ids = [body["header"]["message_id"] for body in _callbacks(receiver, "notify")]
    assert len(notify_ids) == len(set(notify_ids)) == expected
    on_search = Counter(
        body["message"]["correlation_id"] for body in _callbacks(receiver, "on-search")
    )
    assert set(on_search) == set(correlations)
    assert all(count == 1 for count in on_search.values()), on_search.most_common(2)
