"""Helpers for the subscription and webhook tests: payloads, signed posts, waiting."""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec

from dci_bridge.clock import Clock, SystemClock
from dci_bridge.crypto import KeySet, verify_envelope
from dci_bridge.protocol.codec import decode_raw_envelope
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.mapped import MappedRecord, RecordEvent
from dci_bridge.records.seed import generate_bundles
from dci_bridge.settings import Settings
from dci_bridge.upstream.webhook import SIGNATURE_HEADER, sign_webhook

SHA_SECRET = "c0ffee00-1111-4222-8333-444455556666"
V2_TOKEN = "v2-hook-token-for-tests"
_ENCODER = msgspec.json.Encoder()


@functools.cache
def sample_bundles() -> tuple[dict[str, Any], ...]:
    """Registered Farajaland bundles (births, deaths, marriages) of a small seeded population."""
    return tuple(generate_bundles(60, seed=7))


def bundles_of(event: RecordEvent) -> list[tuple[dict[str, Any], MappedRecord]]:
    found = []
    for bundle in sample_bundles():
        record = map_bundle(bundle)
        if record.event is event:
            found.append((bundle, record))
    return found


def webhook_body(bundle: dict[str, Any], topic: str = "BIRTH_REGISTERED") -> bytes:
    """A v1 webhook body as OpenCRVS sends it (compact JSON)."""
    payload = {
        "timestamp": "2026-11-23T08:00:00.000Z",
        "id": str(uuid.uuid4()),
        "event": {"hub": {"topic": topic}, "context": [bundle]},
    }
    return _ENCODER.encode(payload)


def post_webhook(
    client: httpx.Client, base: str, body: bytes, *, secret: str = SHA_SECRET
) -> httpx.Response:
    return client.post(
        f"{base}/opencrvs/webhooks",
        content=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign_webhook(secret, body)},
    )


def wait_for(check: Callable[[], Any], *, timeout_s: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def now_z() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def subscribe_envelope(
    *,
    sender_id: str,
    sender_uri: str,
    event_type: str = "spdci-common:RegistryEventType:LiveBirth",
    filter_type: str | None = "predicate",
    filter_value: Any = None,
    frequency: dict[str, str] | None = None,
    items: int = 1,
) -> dict[str, Any]:
    criteria: dict[str, Any] = {
        "reg_type": "ns:org:RegistryType:Civil",
        "reg_event_type": event_type,
        "filter": filter_value if filter_value is not None else [],
        "notify_record_type": "spdci-extensions-dci:Person",
    }
    if filter_type is not None:
        criteria["filter_type"] = filter_type
    if frequency is not None:
        criteria["frequency"] = frequency
    return {
        "header": {
            "version": "1.0.0",
            "message_id": str(uuid.uuid4()),
            "message_ts": now_z(),
            "action": "subscribe",
            "sender_id": sender_id,
            "sender_uri": sender_uri,
            "total_count": items,
        },
        "message": {
            "transaction_id": str(uuid.uuid4()),
            "subscribe_request": [
                {
                    "reference_id": f"ref-{i}",
                    "timestamp": now_z(),
                    "subscribe_criteria": criteria,
                }
                for i in range(items)
            ],
        },
    }


def unsubscribe_envelope(*, sender_id: str, sender_uri: str, codes: list[str]) -> dict[str, Any]:
    return {
        "header": {
            "version": "1.0.0",
            "message_id": str(uuid.uuid4()),
            "message_ts": now_z(),
            "action": "unsubscribe",
            "sender_id": sender_id,
            "sender_uri": sender_uri,
            "total_count": len(codes),
        },
        "message": {
            "transaction_id": str(uuid.uuid4()),
            "timestamp": now_z(),
            "subscription_codes": codes,
        },
    }


def notify_settings(
    database_url: str, data_dir: Path, receiver_base: str, **extra: str
) -> Settings:
    """A bridge on `database_url` whose callbacks may go to the loopback receiver under
    `{receiver_base}/registry/`, with the tests' webhook secret; `extra` adds variables."""
    return Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": database_url,
            "DCI_BRIDGE_DATA_DIR": str(data_dir),
            "DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET": SHA_SECRET,
            "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
            "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": f"{receiver_base}/registry/",
            **extra,
        }
    )


def verified_notifies(
    bodies: list[bytes], keys: KeySet, clock: Clock | None = None
) -> list[dict[str, Any]]:
    """The `notify` callbacks among `bodies`, each signature checked against `keys`."""
    found = []
    for body in bodies:
        decoded: dict[str, Any] = msgspec.json.decode(body)
        if decoded["header"]["action"] == "notify":
            raw = decode_raw_envelope(body)
            verify_envelope(
                raw.signature, raw.header, raw.message, keys, clock=clock or SystemClock()
            )
            found.append(decoded)
    return found
