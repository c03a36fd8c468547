"""OpenCRVS webhook -> bridge over real HTTP: signature, handshake, inbox, store, quarantine,
idempotency, subscribe/unsubscribe and the notify fan-out (into a recording sink)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from dci_bridge.api.app import create_app
from dci_bridge.db.engine import create_sync_engine, migrate
from dci_bridge.records.mapped import RecordEvent
from dci_bridge.registry.callbacks import NotifyJob, RecordingSink
from dci_bridge.registry.ingest import inbox_table, quarantine_table
from dci_bridge.settings import Settings
from dci_bridge.upstream.webhook import SIGNATURE_HEADER
from tests.dci_assertions import assert_dci_error
from tests.security_support import DciTestClient
from tests.servers import serve_asgi
from tests.subscriptions_support import (
    SHA_SECRET,
    bundles_of,
    post_webhook,
    subscribe_envelope,
    unsubscribe_envelope,
    wait_for,
    webhook_body,
)


@dataclass
class Bridge:
    base: str
    client: httpx.Client
    sink: RecordingSink
    engine: sa.Engine
    database_url: str
    senders: dict[str, httpx.Client] = field(default_factory=dict)

    def sender(self, sender_id: str) -> httpx.Client:
        """An authenticated, signing client of a sender registered on first use."""
        if sender_id not in self.senders:
            client = DciTestClient.register(self.database_url, sender_id)
            self.senders[sender_id] = client.authenticated(self.base, timeout=10)
        return self.senders[sender_id]

    def count(self, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(table)
            for clause in where:
                query = query.where(clause)
            return int(conn.execute(query).scalar_one())

    def jobs(self, kind: str) -> list[NotifyJob]:
        return [job for job in self.sink.jobs if job.kind == kind]


@pytest.fixture
def bridge(database_url: str, tmp_path: Path) -> Iterator[Bridge]:
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": database_url,
            "DCI_BRIDGE_DATA_DIR": str(tmp_path),
            "DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET": SHA_SECRET,
            "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": "http://127.0.0.1:9/",
            "DCI_BRIDGE_DELIVERY__WORKER": "false",
        }
    )
    sink = RecordingSink()
    migrate(database_url)
    engine = create_sync_engine(database_url, pool_size=1)
    with serve_asgi(create_app(settings, sink=sink)) as base, httpx.Client(timeout=10) as client:
        bridge = Bridge(base, client, sink, engine, database_url)
        yield bridge
        for sender in bridge.senders.values():
            sender.close()
    engine.dispose()


def test_handshake_echoes_the_challenge(bridge: Bridge):
    challenge = "q1w2e3r4t5y6u7i8o9p0+/=="
    response = bridge.client.get(
        f"{bridge.base}/opencrvs/webhooks",
        params={"mode": "subscribe", "challenge": challenge, "topic": "BIRTH_REGISTERED"},
    )
    assert response.status_code == 200
    assert response.json() == {"challenge": challenge}
    bad = bridge.client.get(f"{bridge.base}/opencrvs/webhooks", params={"mode": "unsubscribe"})
    assert_dci_error(bad, 400, "err.request.bad")


def test_signed_webhook_is_stored_processed_and_searchable(bridge: Bridge):
    bundle, record = bundles_of(RecordEvent.BIRTH)[0]
    body = webhook_body(bundle)
    response = post_webhook(bridge.client, bridge.base, body)
    assert response.status_code == 202, response.text
    inbox_id = response.json()["id"]
    wait_for(
        lambda: bridge.count(
            inbox_table, inbox_table.c.id == inbox_id, inbox_table.c.status == "done"
        ),
        what="the inbox row to be processed",
    )
    again = post_webhook(bridge.client, bridge.base, body)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": inbox_id}
    child = record.child
    assert child is not None
    assert record.registration_number
    search = bridge.sender("searcher").post(
        f"{bridge.base}/registry/sync/search",
        json=_search("BRN", record.registration_number),
    )
    assert search.status_code == 200, search.text
    records = search.json()["message"]["search_response"][0]["data"]["reg_records"]
    assert len(records) == 1


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_bad_signature_is_401_and_nothing_is_stored(bridge: Bridge, signature: str | None):
    bundle, _ = bundles_of(RecordEvent.BIRTH)[0]
    body = webhook_body(bundle)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    response = bridge.client.post(f"{bridge.base}/opencrvs/webhooks", content=body, headers=headers)
    code = "err.signature.missing" if signature is None else "err.signature.invalid"
    assert_dci_error(response, 401, code)
    assert bridge.count(inbox_table) == 0
    assert bridge.count(quarantine_table) == 0


def test_wrong_secret_is_401(bridge: Bridge):
    bundle, _ = bundles_of(RecordEvent.BIRTH)[0]
    response = post_webhook(bridge.client, bridge.base, webhook_body(bundle), secret="other")
    assert_dci_error(response, 401, "err.signature.invalid")
    assert bridge.count(inbox_table) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"timestamp": "2026-11-23T08:00:00.000Z", "event": {"hub": {"topic": "BIRTH_REG',
            "malformed_json",
        ),
        (b'{"event": {"hub": {"topic": "BIRTH_DECLARED"}, "context": [{}]}}', "unknown_topic"),
        (b'{"event": {"hub": {"topic": "BIRTH_REGISTERED"}, "context": []}}', "missing_bundle"),
        (b'{"event": {"hub": {"topic": "BIRTH_REGISTERED"}}}', "schema"),
        (
            b'{"event": {"hub": {"topic": "BIRTH_REGISTERED"}, '
            b'"context": [{"resourceType": "Bundle", "entry": []}]}}',
            "unmappable",
        ),
        (b'{"event": {"hub": {"topic": "BIRTH_REGISTERED"}, "context": ["x"]}}', "not_a_bundle"),
    ],
)
def test_unusable_payloads_are_400_and_quarantined(bridge: Bridge, body: bytes, reason: str):
    response = post_webhook(bridge.client, bridge.base, body)
    error = assert_dci_error(response, 400, "err.request.bad")
    assert "quarantined" in error["errors"][0]["message"]
    assert bridge.count(inbox_table) == 0
    with bridge.engine.connect() as conn:
        rows = conn.execute(sa.select(quarantine_table)).all()
    assert [(r.reason, bytes(r.body)) for r in rows] == [(reason, body)]


def test_subscribers_are_notified_once_per_matching_event(bridge: Bridge):
    births = bundles_of(RecordEvent.BIRTH)
    deaths = bundles_of(RecordEvent.DEATH)
    assert births
    assert deaths
    _, first = births[0]
    assert first.place is not None
    assert first.place.state_id
    province = first.place.state_id
    uri = "http://127.0.0.1:9/registry/notify"
    plans = {
        "all-births": subscribe_envelope(sender_id="sp-a", sender_uri=uri),
        "province": subscribe_envelope(
            sender_id="sp-b",
            sender_uri=uri,
            filter_value=[
                {
                    "seq_num": 1,
                    "expression1": {
                        "attribute_name": "birth_place",
                        "operator": "eq",
                        "attribute_value": province,
                    },
                }
            ],
        ),
        "deaths": subscribe_envelope(
            sender_id="sp-c",
            sender_uri=uri,
            event_type="spdci-common:RegistryEventType:Death",
        ),
    }
    codes: dict[str, str] = {}
    for name, envelope in plans.items():
        sender = bridge.sender(envelope["header"]["sender_id"])
        response = sender.post(f"{bridge.base}/registry/subscribe", json=envelope)
        assert response.status_code == 200, response.text
        assert response.json()["message"]["ack_status"] == "ACK"
        callback = bridge.jobs("on-subscribe")[-1]
        item = callback.message.subscribe_response[0]
        assert item.status == "succ", item
        codes[name] = item.subscriptions[0].code
        assert callback.correlation_id == response.json()["message"]["correlation_id"]

    body = webhook_body(births[0][0])
    inbox_id = post_webhook(bridge.client, bridge.base, body).json()["id"]
    wait_for(
        lambda: bridge.count(
            inbox_table, inbox_table.c.id == inbox_id, inbox_table.c.status == "done"
        ),
        what="processing",
    )
    notified = {job.header.meta["subscription_code"] for job in bridge.jobs("notify")}  # type: ignore[index]
    assert notified == {codes["all-births"], codes["province"]}
    job = bridge.jobs("notify")[0]
    message = msgspec.json.decode(msgspec.json.encode(job.message))
    event = message["notify_event"][0]
    assert event["data"]["reg_event_type"] == "spdci-common:RegistryEventType:LiveBirth"
    assert len(event["data"]["reg_records"]) == 1
    assert job.header.action == "notify"
    assert job.url == uri

    # The same registration again, re-signed with a different envelope: stored, no new notify.
    before = len(bridge.jobs("notify"))
    other = webhook_body(births[0][0])
    second = post_webhook(bridge.client, bridge.base, other)
    assert second.status_code == 202
    wait_for(
        lambda: bridge.count(inbox_table, inbox_table.c.status == "done") == 2, what="second pass"
    )
    assert len(bridge.jobs("notify")) == before

    # Unsubscribe the catch-all; the next birth reaches only the province subscription if it
    # matches, and never the cancelled one.
    response = bridge.sender("sp-a").post(
        f"{bridge.base}/registry/unsubscribe",
        json=unsubscribe_envelope(sender_id="sp-a", sender_uri=uri, codes=[codes["all-births"]]),
    )
    assert response.status_code == 200
    answer = bridge.jobs("on-unsubscribe")[-1].message
    assert answer.status == "succ"
    assert [(s.code, s.status) for s in answer.subscription_status] == [
        (codes["all-births"], "unsubscribe")
    ]
    before = len(bridge.jobs("notify"))
    post_webhook(bridge.client, bridge.base, webhook_body(births[1][0]))
    wait_for(
        lambda: bridge.count(inbox_table, inbox_table.c.status == "done") == 3, what="third pass"
    )
    later = {job.header.meta["subscription_code"] for job in bridge.jobs("notify")[before:]}  # type: ignore[index]
    assert codes["all-births"] not in later
    assert later <= {codes["province"]}


def test_unsubscribe_foreign_or_unknown_code_is_rejected(bridge: Bridge):
    uri = "http://127.0.0.1:9/cb"
    bridge.sender("owner").post(
        f"{bridge.base}/registry/subscribe",
        json=subscribe_envelope(sender_id="owner", sender_uri=uri),
    )
    code = bridge.jobs("on-subscribe")[-1].message.subscribe_response[0].subscriptions[0].code
    for sender, codes in (("intruder", [code]), ("owner", ["sub-nope"])):
        response = bridge.sender(sender).post(
            f"{bridge.base}/registry/unsubscribe",
            json=unsubscribe_envelope(sender_id=sender, sender_uri=uri, codes=codes),
        )
        assert response.status_code == 200
        answer = bridge.jobs("on-unsubscribe")[-1].message
        assert answer.status == "rjct"
        assert answer.status_reason_code == "rjct.subscription_code.invalid"
    twice = [
        bridge.sender("owner").post(
            f"{bridge.base}/registry/unsubscribe",
            json=unsubscribe_envelope(sender_id="owner", sender_uri=uri, codes=[code]),
        )
        for _ in range(2)
    ]
    assert all(r.status_code == 200 for r in twice)
    answer = bridge.jobs("on-unsubscribe")[-1].message
    assert answer.status_reason_code == "rjct.event.already_unsubscribed"


def _search(id_type: str, value: str) -> dict[str, object]:
    from tests.subscriptions_support import now_z

    return {
        "header": {
            "version": "1.0.0",
            "message_id": "m-1",
            "message_ts": now_z(),
            "action": "search",
            "sender_id": "searcher",
            "total_count": 1,
        },
        "message": {
            "transaction_id": "t-1",
            "search_request": [
                {
                    "reference_id": "r-1",
                    "timestamp": now_z(),
                    "search_criteria": {
                        "query_type": "idtype-value",
                        "query": {"type": id_type, "value": value},
                    },
                }
            ],
        },
    }
