"""Async search and txn status over real HTTP: Ack at once, signed callbacks to a loopback
receiver, pages of a large result, txn status sync and async (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.clock import SystemClock
from dci_bridge.crypto import KeySet, KeyStore, decrypt_message, encrypt_message, verify_envelope
from dci_bridge.db.engine import create_sync_engine
from dci_bridge.delivery import outbox
from dci_bridge.protocol.codec import decode_raw_envelope
from dci_bridge.records.seed import KnownPersons
from dci_bridge.settings import Settings
from tests.dci_assertions import assert_dci_error
from tests.delivery_receivers import RecordingReceiver
from tests.e2e.conftest import envelope, item, sender_for
from tests.security_support import DciTestClient, compact, now_ts
from tests.servers import serve_asgi
from tests.subscriptions_support import subscribe_envelope


class Bridge:
    def __init__(
        self,
        base: str,
        receiver: RecordingReceiver,
        callback: str,
        data: Path,
        sender: DciTestClient,
        other: DciTestClient,
    ):
        self.base = base
        self.sender = sender
        self.http = sender.authenticated(base, timeout=10)  # a registered, signing client
        self.other = other.authenticated(base, timeout=10)  # another registered client
        self.other_id = other.sender_id
        self.receiver = receiver
        self.callback = callback
        self.keys = KeyStore(data / "keys")

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body)

    def callbacks(self, action: str, count: int = 1, timeout_s: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [
                b
                for b in self.receiver.bodies()
                if msgspec.json.decode(b)["header"]["action"] == action
            ]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{count} {action} callbacks did not arrive")

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bridge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bridge]:
    url = request.getfixturevalue(
        "seeded_sqlite_url" if request.param == "sqlite" else "seeded_pg_url"
    )
    sender = sender_for(url)
    other = DciTestClient.register(url, f"another-{uuid.uuid4().hex[:8]}.example.org")
    receiver = RecordingReceiver()
    with serve_asgi(receiver) as receiver_base:
        settings = Settings.from_env(
            {
                "DCI_BRIDGE_DATABASE__URL": url,
                "DCI_BRIDGE_DATA_DIR": str(tmp_path),
                "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
                "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": f"{receiver_base}/registry/",
                "DCI_BRIDGE_DELIVERY__MAX_ASYNC_RECORDS": "45",
            }
        )
        with serve_asgi(create_app(settings)) as base:
            callback = f"{receiver_base}/registry/on-search"
            bridge = Bridge(base, receiver, callback, tmp_path, sender, other)
            bridge.sender_database_url = url
            try:
                yield bridge
            finally:
                bridge.http.close()
                bridge.other.close()


def search_envelope(bridge: Bridge, *items: dict[str, Any], **header: Any) -> dict[str, Any]:
    body = envelope(*items, sender_uri=bridge.callback, **header)
    body["message"]["transaction_id"] = f"txn-{uuid.uuid4()}"
    return body


def acked(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text[:300]
    ack = response.json()["message"]
    assert ack["ack_status"] == "ACK"
    assert set(ack) == {"ack_status", "timestamp", "correlation_id"}
    return str(ack["correlation_id"])


def test_async_search_acks_then_delivers_a_signed_on_search(bridge: Bridge, known: KnownPersons):
    body = search_envelope(bridge, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    correlation_id = acked(bridge.post("/registry/search", body))
    [raw] = bridge.callbacks("on-search")
    answer = bridge.verified(raw)
    header = answer["header"]
    assert header["action"] == "on-search"
    assert header["status"] == "succ"
    assert header["receiver_id"] == "spp.example.org"
    assert header["sender_id"] == "crvs.dci-bridge.local"
    assert header["message_id"] != body["header"]["message_id"]
    assert header["total_count"] == header["completed_count"] == 1
    message = answer["message"]
    assert message["transaction_id"] == body["message"]["transaction_id"]
    assert message["correlation_id"] == correlation_id
    [found] = message["search_response"]
    assert found["reference_id"] == "ref-1"
    assert found["status"] == "succ"
    assert len(found["data"]["reg_records"]) == 1
    assert bridge.receiver.received[0].path == "/registry/on-search"


def test_a_one_message_answer_is_committed_with_the_ack(bridge: Bridge, known: KnownPersons):
    body = search_envelope(bridge, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    correlation_id = acked(bridge.post("/registry/search", body))
    # no callback awaited: the transaction was stored answered, with its on-search queued
    request = txn_status_envelope(bridge, "correlation_id", correlation_id)
    response = bridge.post("/registry/sync/txn/status", request)
    assert response.status_code == 200, response.text[:300]
    status = response.json()["message"]["txnstatus_response"]["txn_status"]
    assert [i["status"] for i in status["search_response"]] == ["succ"]
    engine = create_sync_engine(bridge.sender_database_url)
    try:
        with engine.connect() as conn:
            jobs = [
                j for j in outbox.list_jobs(conn, limit=1000) if j.correlation_id == correlation_id
            ]
    finally:
        engine.dispose()
    assert [j.kind for j in jobs] == ["on-search"]  # no search task ran for it
    [raw] = bridge.callbacks("on-search")
    assert bridge.verified(raw)["header"]["message_id"] == jobs[0].message_id


def encrypted_for_the_bridge(bridge: Bridge, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with its message encrypted to the bridge's `use: enc` key (JWKS), flagged."""
    assert bridge.sender.enc_key is not None  # the sender can be answered encrypted
    ours = KeySet.from_jwks(httpx.get(bridge.base + "/.well-known/jwks.json").content)
    bridge_key = ours.encryption_key()
    assert bridge_key is not None
    body["header"]["is_msg_encrypted"] = True
    body["message"] = encrypt_message(compact(body["message"]), bridge_key)
    return body


def decrypted_answer(bridge: Bridge, raw: bytes) -> dict[str, Any]:
    """The plain message of an encrypted callback, after checking its signature (made over
    the encrypted message, as sent) and that it was encrypted to the sender's key."""
    key = bridge.sender.enc_key
    assert key is not None
    answer = bridge.verified(raw)
    assert answer["header"]["is_msg_encrypted"] is True
    assert answer["message"]["header"]["kid"] == key.kid
    plain: dict[str, Any] = msgspec.json.decode(decrypt_message(answer["message"], {key.kid: key}))
    return plain


def test_an_encrypted_search_gets_an_encrypted_signed_on_search(
    bridge: Bridge, known: KnownPersons
):
    body = search_envelope(bridge, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    correlation_id = acked(bridge.post("/registry/search", encrypted_for_the_bridge(bridge, body)))

    [raw] = bridge.callbacks("on-search")
    assert known.child_brn.encode() not in raw
    plain = decrypted_answer(bridge, raw)
    assert plain["correlation_id"] == correlation_id
    [found] = plain["search_response"]
    assert found["status"] == "succ"
    assert len(found["data"]["reg_records"]) == 1


def test_callback_url_outside_the_registered_prefixes_is_refused(bridge: Bridge):
    body = search_envelope(
        bridge,
        item("idtype-value", {"type": "BRN", "value": "x"}),
    )
    body["header"]["sender_uri"] = "http://169.254.169.254/registry/on-search"
    response = bridge.post("/registry/search", body)
    assert_dci_error(response, 400, "err.sender_uri.invalid")
    assert response.json()["message"]["ack_status"] == "ERR"


def test_a_large_result_comes_as_several_on_search_pages(bridge: Bridge):
    query = [
        {"expression1": {"attribute_name": "birth_year", "operator": "ge", "attribute_value": 1900}}
    ]
    body = search_envelope(
        bridge,
        item("predicate", query, "big", pagination={"page_size": 20, "page_number": 1}),
        item("idtype-value", {"type": "BRN", "value": "no-such-brn"}, "small"),
    )
    correlation_id = acked(bridge.post("/registry/search", body))
    pages = [bridge.verified(b) for b in bridge.callbacks("on-search", 3)]
    pages.sort(key=lambda p: p["message"]["search_response"][0]["pagination"]["page_number"])
    assert [p["header"]["status"] for p in pages] == ["pdng", "pdng", "succ"]
    assert [p["header"]["completed_count"] for p in pages] == [1, 1, 2]
    assert {p["header"]["total_count"] for p in pages} == {2}
    assert {p["message"]["correlation_id"] for p in pages} == {correlation_id}
    assert len({p["header"]["message_id"] for p in pages}) == 3
    big = [
        next(i for i in p["message"]["search_response"] if i["reference_id"] == "big")
        for p in pages
    ]
    assert [i["pagination"]["page_number"] for i in big] == [1, 2, 3]
    assert [len(i["data"]["reg_records"]) for i in big] == [20, 20, 20]
    keys = [r["identifier"][0]["identifier_value"] for i in big for r in i["data"]["reg_records"]]
    assert len(set(keys)) == 60
    assert [i["reference_id"] for i in pages[0]["message"]["search_response"]] == ["big", "small"]


def txn_status_envelope(bridge: Bridge, attribute_type: str, value: Any) -> dict[str, Any]:
    return {
        "header": {
            "version": "1.0.0",
            "message_id": str(uuid.uuid4()),
            "message_ts": now_ts(),
            "action": "txn-status",
            "sender_id": "spp.example.org",
            "sender_uri": bridge.callback.replace("on-search", "txn/on-status"),
            "total_count": 1,
        },
        "message": {
            "transaction_id": f"status-{uuid.uuid4()}",
            "txnstatus_request": {
                "reference_id": "q-1",
                "txn_type": "search",
                "attribute_type": attribute_type,
                "attribute_value": value,
            },
        },
    }


def test_txn_status_reports_the_search_sync_and_async(bridge: Bridge, known: KnownPersons):
    body = search_envelope(bridge, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    correlation_id = acked(bridge.post("/registry/search", body))
    bridge.callbacks("on-search")
    txn = body["message"]["transaction_id"]
    for attribute_type, value in [
        ("transaction_id", txn),
        ("correlation_id", correlation_id),
        ("reference_id_list", ["ref-1"]),
    ]:
        response = bridge.post(
            "/registry/sync/txn/status", txn_status_envelope(bridge, attribute_type, value)
        )
        assert response.status_code == 200, response.text[:300]
        answer = response.json()
        assert answer["header"]["action"] == "txn-on-status"
        assert answer["header"]["status"] == "succ"
        status = answer["message"]["txnstatus_response"]
        assert status["txn_type"] == "search"
        assert status["txn_status"]["transaction_id"] == txn
        assert status["txn_status"]["correlation_id"] == correlation_id
        assert status["txn_status"]["search_response"][0]["status"] == "succ"

    request = txn_status_envelope(bridge, "transaction_id", txn)
    status_correlation = acked(bridge.post("/registry/txn/status", request))
    [raw] = bridge.callbacks("txn-on-status")
    answer = bridge.verified(raw)
    assert bridge.receiver.received[-1].path == "/registry/txn/on-status"
    assert answer["message"]["transaction_id"] == request["message"]["transaction_id"]
    assert answer["message"]["correlation_id"] == status_correlation
    assert answer["message"]["txnstatus_response"]["txn_status"]["transaction_id"] == txn


def test_an_encrypted_txn_status_gets_an_encrypted_signed_txn_on_status(
    bridge: Bridge, known: KnownPersons
):
    body = search_envelope(bridge, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    searched = acked(bridge.post("/registry/search", body))
    bridge.callbacks("on-search")

    request = txn_status_envelope(bridge, "correlation_id", searched)
    encrypted = encrypted_for_the_bridge(bridge, request)
    status_correlation = acked(bridge.post("/registry/txn/status", encrypted))

    [raw] = bridge.callbacks("txn-on-status")
    assert searched.encode() not in raw  # the status names the search only inside the JWE
    plain = decrypted_answer(bridge, raw)
    assert plain["correlation_id"] == status_correlation
    assert plain["txnstatus_response"]["txn_status"]["correlation_id"] == searched


def test_txn_status_by_subscription_codes(bridge: Bridge):
    subscribe = subscribe_envelope(
        sender_id="spp.example.org",
        sender_uri=bridge.callback.replace("on-search", "on-subscribe"),
        items=2,
    )
    acked(bridge.post("/registry/subscribe", subscribe))
    [raw] = bridge.callbacks("on-subscribe")
    answered = bridge.verified(raw)["message"]["subscribe_response"]
    codes = [info["code"] for item in answered for info in item["subscriptions"]]
    assert len(codes) == 2

    def status(sender: httpx.Client, sender_id: str, value: list[str]) -> dict[str, Any]:
        request = txn_status_envelope(bridge, "subscription_code_list", value)
        request["header"]["sender_id"] = sender_id
        request["message"]["txnstatus_request"]["txn_type"] = "subscribe"
        response = sender.post("/registry/sync/txn/status", json=request)
        assert response.status_code == 200, response.text[:300]
        return dict(response.json())

    answer = status(bridge.http, "spp.example.org", ["sub-unknown", codes[1]])
    assert answer["header"]["status"] == "succ"
    found = answer["message"]["txnstatus_response"]
    assert found["txn_type"] == "subscribe"
    assert found["txn_status"]["transaction_id"] == subscribe["message"]["transaction_id"]
    [item] = found["txn_status"]["subscribe_response"]  # limited to the asked code
    assert [info["code"] for info in item["subscriptions"]] == [codes[1]]
    for http, sender_id, value in [
        (bridge.http, "spp.example.org", ["sub-unknown"]),
        (bridge.other, bridge.other_id, codes),  # another sender's subscriptions
    ]:
        answer = status(http, sender_id, value)
        assert answer["header"]["status"] == "rjct"
        assert "message" not in answer


def test_an_encrypted_subscribe_gets_an_encrypted_signed_on_subscribe(bridge: Bridge):
    body = subscribe_envelope(
        sender_id="spp.example.org",
        sender_uri=bridge.callback.replace("on-search", "on-subscribe"),
    )
    transaction_id = body["message"]["transaction_id"]
    correlation_id = acked(
        bridge.post("/registry/subscribe", encrypted_for_the_bridge(bridge, body))
    )

    [raw] = bridge.callbacks("on-subscribe")
    assert transaction_id.encode() not in raw
    plain = decrypted_answer(bridge, raw)
    assert plain["transaction_id"] == transaction_id
    assert plain["correlation_id"] == correlation_id
    [answered] = plain["subscribe_response"]
    assert answered["status"] == "succ"
    assert answered["subscriptions"][0]["code"]


def test_txn_status_of_an_unknown_or_foreign_transaction_is_rejected(
    bridge: Bridge, known: KnownPersons
):
    body = search_envelope(bridge, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    acked(bridge.post("/registry/search", body))
    bridge.callbacks("on-search")
    for http, sender, value in [
        (bridge.http, "spp.example.org", "no-such-transaction"),
        (bridge.other, bridge.other_id, body["message"]["transaction_id"]),
    ]:
        request = txn_status_envelope(bridge, "transaction_id", value)
        request["header"]["sender_id"] = sender
        response = http.post("/registry/sync/txn/status", json=request)
        assert response.status_code == 200
        answer = response.json()
        assert answer["header"]["status"] == "rjct"
        assert "message" not in answer


def test_admin_api_lists_deliveries_with_their_attempts(bridge: Bridge, known: KnownPersons):
    body = search_envelope(bridge, item("idtype-value", {"type": "BRN", "value": known.child_brn}))
    correlation_id = acked(bridge.post("/registry/search", body))
    bridge.callbacks("on-search")
    admin = DciTestClient.register(
        bridge.sender_database_url,
        f"admin-{uuid.uuid4().hex[:8]}.example.org",
        scopes=("registry.admin",),
    )
    with httpx.Client(base_url=bridge.base, timeout=10) as http:
        assert_dci_error(http.get("/admin/deliveries"), 401, "err.request.unauthorized")
        searcher = {"Authorization": f"Bearer {bridge.sender.token(bridge.base)}"}
        assert_dci_error(
            http.get("/admin/deliveries", headers=searcher), 403, "err.request.forbidden"
        )
        headers = {"Authorization": f"Bearer {admin.token(bridge.base, 'registry.admin')}"}
        deadline = time.monotonic() + 10
        while True:
            listed = http.get(
                "/admin/deliveries", params={"kind": "on-search", "limit": 1000}, headers=headers
            )
            assert listed.status_code == 200, listed.text[:300]
            mine = [j for j in listed.json()["jobs"] if j["correlation_id"] == correlation_id]
            if (mine and mine[0]["state"] == "done") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        [job] = mine
        assert job["state"] == "done"
        assert job["target_url"] == bridge.callback
        assert "header" not in job
        assert "message" not in job
        shown = http.get(f"/admin/deliveries/{job['job_id']}", headers=headers)
        assert shown.status_code == 200
        [attempt] = shown.json()["attempt_log"]
        assert attempt["http_status"] == 200
        assert attempt["outcome"] == "done"
        missing = http.get("/admin/deliveries/no-such-job", headers=headers)
        assert_dci_error(missing, 404, "err.request.not_found")
        bad = http.get("/admin/deliveries", params={"state": "weird"}, headers=headers)
        assert_dci_error(bad, 400, "err.request.bad")
