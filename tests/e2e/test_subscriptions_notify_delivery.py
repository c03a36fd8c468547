"""The whole loop over real HTTP: subscribe -> signed on-subscribe at a loopback subscriber;
OpenCRVS webhook -> signed notify delivered by the outbox; unsubscribe -> silence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.clock import SystemClock
from dci_bridge.crypto import KeyStore, verify_envelope
from dci_bridge.db.engine import migrate
from dci_bridge.protocol.codec import decode_raw_envelope
from dci_bridge.records.mapped import RecordEvent
from tests.delivery_receivers import RecordingReceiver
from tests.security_support import DciTestClient
from tests.servers import serve_asgi
from tests.subscriptions_support import (
    bundles_of,
    notify_settings,
    post_webhook,
    subscribe_envelope,
    unsubscribe_envelope,
    webhook_body,
)


@dataclass
class Loop:
    base: str
    client: httpx.Client
    receiver: RecordingReceiver
    receiver_base: str
    keys: KeyStore

    def callbacks(self, action: str, count: int = 1, timeout_s: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [
                b
                for b in self.receiver.bodies()
                if msgspec.json.decode(b)["header"]["action"] == action
            ]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} {action} callbacks did not arrive")
            time.sleep(0.02)

    def verified(self, body: bytes) -> dict[str, Any]:
        raw = decode_raw_envelope(body)
        verify_envelope(
            raw.signature,
            raw.header,
            raw.message,
            self.keys.verification_keys(),
            clock=SystemClock(),
        )
        decoded: dict[str, Any] = msgspec.json.decode(body)
        return decoded


@pytest.fixture
def loop(database_url: str, tmp_path: Path) -> Iterator[Loop]:
    receiver = RecordingReceiver()
    with serve_asgi(receiver) as receiver_base:
        settings = notify_settings(database_url, tmp_path, receiver_base)
        migrate(database_url)
        sender = DciTestClient.register(database_url, "sp.example.org")
        with (
            serve_asgi(create_app(settings)) as base,
            sender.authenticated(base, timeout=10) as client,
        ):
            yield Loop(base, client, receiver, receiver_base, KeyStore(tmp_path / "keys"))


def test_registration_reaches_the_subscriber_as_a_signed_notify(loop: Loop):
    uri = f"{loop.receiver_base}/registry/notify"
    response = loop.client.post(
        f"{loop.base}/registry/subscribe",
        json=subscribe_envelope(sender_id="sp.example.org", sender_uri=uri),
    )
    assert response.status_code == 200, response.text
    correlation_id = response.json()["message"]["correlation_id"]
    on_subscribe = loop.verified(loop.callbacks("on-subscribe")[0])
    assert on_subscribe["message"]["correlation_id"] == correlation_id
    item = on_subscribe["message"]["subscribe_response"][0]
    assert item["status"] == "succ"
    code = item["subscriptions"][0]["code"]

    births = bundles_of(RecordEvent.BIRTH)
    assert post_webhook(loop.client, loop.base, webhook_body(births[0][0])).status_code == 202
    notify = loop.verified(loop.callbacks("notify")[0])
    assert notify["header"]["receiver_id"] == "sp.example.org"
    assert notify["header"]["status"] == "succ"
    event = notify["message"]["notify_event"][0]
    assert event["subscription_code"] == code
    assert event["data"]["reg_event_type"] == "spdci-common:RegistryEventType:LiveBirth"
    assert event["data"]["reg_records"][0]["@type"] == "CRVS_Person"

    response = loop.client.post(
        f"{loop.base}/registry/unsubscribe",
        json=unsubscribe_envelope(sender_id="sp.example.org", sender_uri=uri, codes=[code]),
    )
    assert response.json()["message"]["ack_status"] == "ACK"
    on_unsubscribe = loop.verified(loop.callbacks("on-unsubscribe")[0])
    assert on_unsubscribe["message"]["status"] == "succ"
    post_webhook(loop.client, loop.base, webhook_body(births[1][0]))
    time.sleep(1.5)
    assert len(loop.callbacks("notify")) == 1
