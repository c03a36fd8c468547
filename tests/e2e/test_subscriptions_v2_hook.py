"""The OpenCRVS v2 lifecycle-hook receiver over real HTTP: its bearer authentication, the event
document mapped through the (configurable) field map, and the signed notify delivered to a
loopback subscriber; non-REGISTER actions and re-deliveries notify nobody."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dci_bridge.api.app import create_app
from dci_bridge.crypto import KeyStore
from dci_bridge.db.engine import create_sync_engine, migrate
from dci_bridge.records.mapped import MappedRecord, RecordEvent
from dci_bridge.registry.ingest import inbox_table
from dci_bridge.upstream.simulator.v2 import event_document
from tests.dci_assertions import assert_dci_error
from tests.delivery_receivers import RecordingReceiver
from tests.security_support import DciTestClient
from tests.servers import serve_asgi
from tests.subscriptions_support import (
    V2_TOKEN,
    bundles_of,
    notify_settings,
    subscribe_envelope,
    verified_notifies,
    wait_for,
)

SENDER = "sp.example.org"
FIELD_MAP = {"child.birth_date": "child.dateOfBirth", "child.name": "child.fullName"}
"""A country whose birth form names two fields differently from Farajaland."""


@dataclass
class Hook:
    base: str
    receiver: RecordingReceiver
    keys: KeyStore
    database_url: str

    def post(
        self, document: dict[str, Any], *, action: str = "REGISTER", token: str | None = V2_TOKEN
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(
            f"{self.base}/trigger/events/{document['type']}/actions/{action}",
            content=json.dumps(document).encode(),
            headers=headers,
            timeout=30,
        )

    def notifies(self) -> list[dict[str, Any]]:
        return verified_notifies(self.receiver.bodies(), self.keys.verification_keys())

    def inbox_rows(self) -> int:
        engine = create_sync_engine(self.database_url, pool_size=1)
        try:
            with engine.connect() as conn:
                query = sa.select(sa.func.count()).select_from(inbox_table)
                return int(conn.execute(query).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture
def hook(database_url: str, tmp_path: Path) -> Iterator[Hook]:
    receiver = RecordingReceiver()
    with serve_asgi(receiver) as receiver_base:
        settings = notify_settings(
            database_url,
            tmp_path,
            receiver_base,
            DCI_BRIDGE_OPENCRVS_WEBHOOK__V2_TOKEN=V2_TOKEN,
            DCI_BRIDGE_OPENCRVS_WEBHOOK__V2_FIELD_MAP=json.dumps(FIELD_MAP),
        )
        migrate(database_url)
        sender = DciTestClient.register(database_url, SENDER)
        with (
            serve_asgi(create_app(settings)) as base,
            sender.authenticated(base, timeout=30) as client,
        ):
            answer = client.post(
                f"{base}/registry/subscribe",
                json=subscribe_envelope(
                    sender_id=SENDER, sender_uri=f"{receiver_base}/registry/notify"
                ),
            )
            assert answer.status_code == 200, answer.text
            yield Hook(base, receiver, KeyStore(tmp_path / "keys"), database_url)


def _country_document(record: MappedRecord) -> dict[str, Any]:
    """The simulator's v2 event document, with the country's own field ids (FIELD_MAP)."""
    document = copy.deepcopy(event_document(record))
    renames = {"child.dob": "child.dateOfBirth", "child.name": "child.fullName"}
    for action in document["actions"]:
        declaration = action.get("declaration") or {}
        for ours, theirs in renames.items():
            if ours in declaration:
                declaration[theirs] = declaration.pop(ours)
    return document


def _birth() -> MappedRecord:
    return next(r for _, r in bundles_of(RecordEvent.BIRTH) if r.registration_number)


def test_registered_event_is_mapped_and_notified(hook: Hook) -> None:
    record = _birth()
    document = _country_document(record)
    answer = hook.post(document)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    notify = wait_for(hook.notifies, timeout_s=30, what="the notify")[0]
    assert notify["header"]["receiver_id"] == SENDER
    event = notify["message"]["notify_event"][0]
    assert event["data"]["reg_event_type"] == "spdci-common:RegistryEventType:LiveBirth"
    person = event["data"]["reg_records"][0]
    child = record.subjects[0]
    # the renamed fields were read through the field map
    assert person["birth_date"] == child.birth_date
    assert person["name"]["surname"] == child.family_name
    identifiers = {i["identifier_type"]: i["identifier_value"] for i in person["identifier"]}
    assert identifiers["BRN"] == record.registration_number

    # OpenCRVS (or the hook) sending the same event again notifies nobody twice
    again = hook.post(document)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    time.sleep(1.5)
    assert len(hook.notifies()) == 1


@pytest.mark.parametrize("token", [None, "wrong-token", f"{V2_TOKEN}x"])
def test_without_the_hook_token_nothing_is_stored(hook: Hook, token: str | None) -> None:
    answer = hook.post(_country_document(_birth()), token=token)
    assert_dci_error(answer, 401, "err.request.unauthorized")
    assert hook.inbox_rows() == 0


def test_other_actions_are_acknowledged_and_ignored(hook: Hook) -> None:
    answer = hook.post(_country_document(_birth()), action="DECLARE")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert hook.inbox_rows() == 0
    time.sleep(1.0)
    assert hook.notifies() == []


def test_a_document_missing_mapped_fields_is_refused(hook: Hook) -> None:
    document = _country_document(_birth())
    for action in document["actions"]:
        action.pop("declaration", None)
    answer = hook.post(document)
    assert_dci_error(answer, 400, "err.request.bad")
    assert hook.inbox_rows() == 0
