"""SIGKILL of a real `dci-bridge serve` between webhook receipt and notify delivery loses
nothing: OpenCRVS deliveries the bridge acknowledged are, after a restart, notified to every
matching subscriber (a real loopback subscriber, SQLite file and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.db.engine import migrate
from dci_bridge.records.mapped import RecordEvent
from tests.delivery_receivers import RecordingReceiver
from tests.security_support import DciTestClient
from tests.servers import free_port, serve_asgi, stop_process, wait_until_serving
from tests.subscriptions_support import (
    SHA_SECRET,
    bundles_of,
    post_webhook,
    subscribe_envelope,
    webhook_body,
)

pytestmark = pytest.mark.slow

SUBSCRIBERS = {
    "births-a.example.org": RecordEvent.BIRTH,
    "births-b.example.org": RecordEvent.BIRTH,
    "deaths.example.org": RecordEvent.DEATH,
}
EVENT_TYPES = {
    RecordEvent.BIRTH: "spdci-common:RegistryEventType:LiveBirth",
    RecordEvent.DEATH: "spdci-common:RegistryEventType:Death",
}
PER_EVENT = 8


class SlowSubscriber(RecordingReceiver):
    """Answers after a delay, so that notifies are still undelivered when the bridge dies."""

    delay_s: float = 0.3

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(self.delay_s)
        await super().__call__(scope, receive, send)


class BridgeProcess:
    """`dci-bridge serve` on a free loopback port, output to a file."""

    def __init__(self, database_url: str, data_dir: Path, receiver: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")}
        env.update(
            {
                "DCI_BRIDGE_DATA_DIR": str(data_dir),
                "DCI_BRIDGE_DATABASE__URL": database_url,
                "DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET": SHA_SECRET,
                "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
                "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": f"{receiver}/",
                "DCI_BRIDGE_DELIVERY__LEASE_S": "15",
                "DCI_BRIDGE_DELIVERY__TIMEOUT_S": "10",
                "DCI_BRIDGE_LOG__LEVEL": "warning",
            }
        )
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dci_bridge", "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        wait_until_serving(f"{self.base}/health", self.proc)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@pytest.fixture
def bridges() -> Iterator[list[BridgeProcess]]:
    started: list[BridgeProcess] = []
    yield started
    for bridge in started:
        bridge.stop()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


REGISTRATION_ID = {
    "spdci-common:RegistryEventType:LiveBirth": "BRN",
    "spdci-common:RegistryEventType:Death": "DRN",
}


def notified(receiver: RecordingReceiver) -> dict[str, dict[str, set[str]]]:
    """subscriber -> registration number notified -> message ids of the notifies carrying it.

    The number is the event's own (BRN of a birth, DRN of a death): a deceased person's
    record also names the BRN of their own earlier birth."""
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    with receiver.lock:
        received = list(receiver.received)
    for item in received:
        if not item.body or not item.path.endswith("/notify"):
            continue  # a request cut by the SIGKILL arrives empty
        body = msgspec.json.decode(item.body)
        if body["header"]["action"] != "notify":
            continue
        subscriber = item.path.split("/")[2]
        for event in body["message"]["notify_event"]:
            wanted = REGISTRATION_ID[event["data"]["reg_event_type"]]
            for record in event["data"]["reg_records"]:
                for identifier in record.get("identifier") or ():
                    if identifier["identifier_type"] == wanted:
                        number = identifier["identifier_value"]
                        seen[subscriber][number].add(body["header"]["message_id"])
    return seen


def test_sigkill_between_webhook_ack_and_delivery_loses_no_notify(
    database_url: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    events = {
        event: [(b, r) for b, r in bundles_of(event) if r.registration_number][:PER_EVENT]
        for event in (RecordEvent.BIRTH, RecordEvent.DEATH)
    }
    numbers = {
        str(r.registration_number): event for event, pairs in events.items() for _, r in pairs
    }
    assert len(numbers) == sum(len(pairs) for pairs in events.values())
    assert min(len(pairs) for pairs in events.values()) >= 4
    expected = {
        sender: {n for n, event in numbers.items() if event is wanted}
        for sender, wanted in SUBSCRIBERS.items()
    }
    migrate(database_url)
    clients = {sender: DciTestClient.register(database_url, sender) for sender in SUBSCRIBERS}
    subscriber = SlowSubscriber()
    with serve_asgi(subscriber) as receiver:
        first = BridgeProcess(database_url, tmp_path, receiver, tmp_path / "bridge.log")
        bridges.append(first)
        first.wait_ready()
        for sender, event in SUBSCRIBERS.items():
            envelope = subscribe_envelope(
                sender_id=sender,
                sender_uri=f"{receiver}/sub/{sender}/notify",
                event_type=EVENT_TYPES[event],
            )
            with clients[sender].authenticated(first.base, timeout=30) as client:
                answer = client.post(f"{first.base}/registry/subscribe", json=envelope)
                assert answer.status_code == 200, answer.text
        wait_until(
            lambda: sum(b'"on-subscribe"' in b for b in subscriber.bodies()) == len(SUBSCRIBERS),
            60,
            "the on-subscribe callbacks",
        )

        # OpenCRVS delivers the registrations; each is acknowledged, then the bridge dies
        with httpx.Client(timeout=30) as opencrvs:
            for event, pairs in events.items():
                topic = f"{event.name}_REGISTERED"
                for bundle, _ in pairs:
                    answer = post_webhook(opencrvs, first.base, webhook_body(bundle, topic))
                    assert answer.status_code == 202, answer.text
        first.kill()
        before = notified(subscriber)
        delivered = sum(len(v) for v in before.values())
        assert delivered < sum(len(v) for v in expected.values()), "all delivered before kill"

        second = BridgeProcess(database_url, tmp_path, receiver, tmp_path / "bridge.log")
        bridges.append(second)
        second.wait_ready()

        def complete() -> bool:
            seen = notified(subscriber)
            return all(set(seen[s]) == expected[s] for s in SUBSCRIBERS)

        wait_until(complete, 180, "every notify after the restart")

    seen = notified(subscriber)
    for sender in SUBSCRIBERS:
        assert set(seen[sender]) == expected[sender], sender  # nothing lost, nothing foreign
        for number, message_ids in seen[sender].items():
            # a notify repeated after the crash is the same message: the subscriber dedupes
            assert len(message_ids) == 1, (sender, number, message_ids)
