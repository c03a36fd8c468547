"""Disclosure policies on subscriptions and notifications, over real HTTP: a bridge with its
delivery worker, a loopback subscriber receiving signed callbacks, real webhooks.

Two subscribers with different policies (cash transfer: BRN, birth date, parents' ids; age
check: `age_at_least_18` only) get differently minimised notifies for the same OpenCRVS
webhook; subscriptions outside the policy are refused (403 without a policy, per item in
on-subscribe otherwise); a policy narrowed or removed after subscribing applies to the next
event; every notify queued is in the audit trail, found by `dci-bridge audit`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from click.testing import CliRunner

from dci_bridge.api.app import create_app
from dci_bridge.cli import main
from dci_bridge.db.engine import migrate
from dci_bridge.records.mapped import MappedRecord, RecordEvent
from dci_bridge.registry.audit import AuditFilter, read_events
from dci_bridge.registry.policy import DisclosurePolicy, parse_policy
from dci_bridge.registry.policy_store import PolicyStore
from tests.dci_assertions import assert_dci_error
from tests.delivery_receivers import RecordingReceiver
from tests.security_support import DciTestClient
from tests.servers import serve_asgi
from tests.subscriptions_support import (
    bundles_of,
    notify_settings,
    post_webhook,
    subscribe_envelope,
    wait_for,
    webhook_body,
)

POLICIES = Path(__file__).resolve().parents[2] / "docs" / "policies"
CASH = "cash.example.org"
AGE = "age.example.org"
NOBODY = "nopolicy.example.org"
BIRTH = "spdci-common:RegistryEventType:LiveBirth"
DEATH = "spdci-common:RegistryEventType:Death"


def _policy(name: str) -> DisclosurePolicy:
    return parse_policy((POLICIES / f"{name}.json").read_bytes())


@dataclass
class World:
    base: str
    database_url: str
    receiver: RecordingReceiver
    receiver_base: str
    clients: dict[str, httpx.Client]

    @property
    def uri(self) -> str:
        return f"{self.receiver_base}/registry/notify"

    def callbacks(self, receiver_id: str, action: str, count: int = 1) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]]:
            bodies = [msgspec.json.decode(b) for b in self.receiver.bodies()]
            return [
                b
                for b in bodies
                if b["header"]["action"] == action and b["header"]["receiver_id"] == receiver_id
            ]

        wait_for(lambda: len(found()) >= count, what=f"{count} {action} to {receiver_id}")
        return found()

    def subscribe(self, sender: str, **options: Any) -> httpx.Response:
        envelope = subscribe_envelope(sender_id=sender, sender_uri=self.uri, **options)
        return self.clients[sender].post(f"{self.base}/registry/subscribe", json=envelope)

    def subscribed(self, sender: str, count: int, **options: Any) -> dict[str, Any]:
        """Subscribe and return the item of the `count`-th on-subscribe to `sender`."""
        response = self.subscribe(sender, **options)
        assert response.status_code == 200, response.text
        assert response.json()["message"]["ack_status"] == "ACK"
        answer: dict[str, Any] = self.callbacks(sender, "on-subscribe", count)[count - 1]
        item: dict[str, Any] = answer["message"]["subscribe_response"][0]
        return item


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    receiver = RecordingReceiver()
    with serve_asgi(receiver) as receiver_base:
        settings = notify_settings(database_url, tmp_path, receiver_base)
        migrate(database_url)
        senders = {
            CASH: DciTestClient.register(database_url, CASH, policy=_policy("cash-transfer")),
            AGE: DciTestClient.register(database_url, AGE, policy=_policy("age-check")),
            NOBODY: DciTestClient.register(database_url, NOBODY, policy=None),
        }
        with serve_asgi(create_app(settings)) as base:
            clients = {s: c.authenticated(base, timeout=10) for s, c in senders.items()}
            try:
                yield World(base, database_url, receiver, receiver_base, clients)
            finally:
                for client in clients.values():
                    client.close()


def _records(notify: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for item in notify["message"]["notify_event"] for r in item["data"]["reg_records"]]


def _birth(index: int) -> tuple[dict[str, Any], MappedRecord]:
    return bundles_of(RecordEvent.BIRTH)[index]


def test_a_sender_without_a_policy_cannot_subscribe(world: World):
    response = world.subscribe(NOBODY)
    assert_dci_error(response, 403, "err.request.forbidden", style="async")
    assert "policy" in response.text
    time.sleep(0.5)
    assert [b for b in world.receiver.bodies() if NOBODY.encode() in b] == []


def test_subscriptions_outside_the_policy_are_refused_per_item(world: World):
    # cash transfer may learn about births only
    death = world.subscribed(CASH, 1, event_type=DEATH)
    assert death["status"] == "rjct"
    assert death["status_reason_code"] == "rjct.notify_types.invalid"
    assert "not allowed for this sender" in death["status_reason_message"]
    # ... and may not filter: no predicate searches, no search attributes
    province = _birth(0)[1].place
    assert province is not None
    filtered = world.subscribed(
        CASH,
        2,
        filter_value=[
            {
                "seq_num": 1,
                "expression1": {
                    "attribute_name": "birth_place",
                    "operator": "eq",
                    "attribute_value": province.state_id,
                },
            }
        ],
    )
    assert filtered["status"] == "rjct"
    assert filtered["status_reason_code"] == "rjct.notify_details.invalid"
    assert "not allowed for this sender" in filtered["status_reason_message"]
    assert str(province.state_id) not in filtered["status_reason_message"]
    # nothing was stored: a birth notifies nobody
    with httpx.Client(timeout=10) as client:
        assert post_webhook(client, world.base, webhook_body(_birth(0)[0])).status_code == 202
    time.sleep(1.5)
    assert [b for b in world.receiver.bodies() if b'"notify"' in b] == []


def test_two_policies_two_minimisations_of_one_event_then_narrowed(world: World):
    cash = world.subscribed(CASH, 1)
    age = world.subscribed(AGE, 1)
    assert cash["status"] == "succ", cash
    assert age["status"] == "succ", age
    cash_code = cash["subscriptions"][0]["code"]
    age_code = age["subscriptions"][0]["code"]

    bundle, record = _birth(0)
    child = record.child
    assert child is not None
    with httpx.Client(timeout=10) as client:
        assert post_webhook(client, world.base, webhook_body(bundle)).status_code == 202
    cash_notify = world.callbacks(CASH, "notify")[0]
    age_notify = world.callbacks(AGE, "notify")[0]
    assert cash_notify["message"]["notify_event"][0]["subscription_code"] == cash_code
    assert age_notify["message"]["notify_event"][0]["subscription_code"] == age_code

    (cash_record,) = _records(cash_notify)
    assert set(cash_record) <= {
        "@type",
        "identifier",
        "birth_date",
        "parent1_identifier",
        "parent2_identifier",
    }
    assert cash_record["birth_date"] == child.birth_date
    assert [i["identifier_type"] for i in cash_record["identifier"]] == ["BRN"]
    assert cash_record["identifier"][0]["identifier_value"] == record.registration_number
    (age_record,) = _records(age_notify)
    assert child.birth_date is not None
    born, today = dt.date.fromisoformat(child.birth_date), dt.datetime.now(dt.UTC).date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    assert age_record == {"@type": "CRVS_Person", "age_at_least_18": age >= 18}
    # nothing the age check may not learn is anywhere in its callback
    age_body = json.dumps(age_notify)
    assert str(record.registration_number) not in age_body
    assert str(child.birth_date) not in age_body

    # every notify queued is audited: subscriber, subscription, persons, time
    rows = list(read_events(world.database_url, AuditFilter(action="notify")))
    by_sender = {row["sender_id"]: row for row in rows}
    assert set(by_sender) == {CASH, AGE}
    for sender, code, notify in ((CASH, cash_code, cash_notify), (AGE, age_code, age_notify)):
        row = by_sender[sender]
        assert row["detail"]["subscription_code"] == code
        assert row["message_id"] == notify["header"]["message_id"]
        assert row["status"] == "queued"
        assert row["record_count"] == 1
        assert row["at"].startswith("20")
    assert by_sender[CASH]["record_ids"] == by_sender[AGE]["record_ids"]
    # only our settings: the test runner's own DCI_BRIDGE_* variables are not settings
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DCI_BRIDGE_")}
    exported = CliRunner().invoke(
        main,
        [
            "audit",
            "export",
            "--format",
            "jsonl",
            "--subscription",
            age_code,
            "--database-url",
            world.database_url,
        ],
        env=clean,
    )
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in exported.output.splitlines() if line]
    assert [line["sender_id"] for line in lines] == [AGE]

    # the operator narrows cash transfer to the birth date and removes the age check's policy:
    # the next event is minimised under the new policy, the age check learns nothing
    store = PolicyStore.from_url(world.database_url)
    try:
        narrowed = msgspec.structs.replace(_policy("cash-transfer"), fields=["birth_date"])
        store.set(CASH, narrowed)
        assert store.clear(AGE)
    finally:
        store.close()
    bundle2, record2 = _birth(1)
    with httpx.Client(timeout=10) as client:
        assert post_webhook(client, world.base, webhook_body(bundle2)).status_code == 202
    second = world.callbacks(CASH, "notify", 2)[1]
    (narrow_record,) = _records(second)
    assert record2.child is not None
    assert narrow_record == {"@type": "CRVS_Person", "birth_date": record2.child.birth_date}
    time.sleep(1.0)
    assert len(world.callbacks(AGE, "notify")) == 1
    rows = list(read_events(world.database_url, AuditFilter(action="notify", sender_id=AGE)))
    assert len(rows) == 1
