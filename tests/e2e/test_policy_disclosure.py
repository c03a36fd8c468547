"""Disclosure policies over real HTTP: the same search by senders with different policies.

The example policies of docs/policies/ are stored for their senders in the seeded store (the
real PolicyStore path), then a bridge is served over loopback on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.db.engine import migrate
from dci_bridge.records.seed import KnownPersons
from dci_bridge.registry.audit import AuditFilter, read_events
from dci_bridge.registry.policy import DisclosurePolicy, parse_policy
from dci_bridge.registry.policy_store import PolicyStore
from dci_bridge.settings import Settings
from tests.dci_assertions import assert_dci_error
from tests.delivery_receivers import RecordingReceiver
from tests.e2e.conftest import envelope, item
from tests.security_support import DciTestClient
from tests.servers import serve_asgi

SEARCH = "/registry/sync/search"
POLICIES = Path(__file__).resolve().parents[2] / "docs" / "policies"
CASH, PENSION, AGE = "cash.example.org", "pension.example.org", "agecheck.example.org"
STATS, LIMITED, NOBODY = "stats.example.org", "limited.example.org", "nobody.example.org"
AUTHORIZE = {
    "@type": "Authorize",
    "ts": "2026-11-23T09:00:00Z",
    "purpose": {"text": "Child grant enrolment", "code": "CHILD_GRANT"},
}
CONSENT = {"@type": "Consent", "ts": "2999-01-01T00:00:00Z"}  # replaced per request


_CLIENTS: dict[tuple[str, str], DciTestClient] = {}


def client_for(database_url: str, sender_id: str) -> DciTestClient:
    """`sender_id` registered (keys, secret) once per seeded database."""
    key = (database_url, sender_id)
    if key not in _CLIENTS:
        migrate(database_url)
        # policy=None: the policies of this module are set by its fixtures (or none)
        _CLIENTS[key] = DciTestClient.register(database_url, sender_id, policy=None)
    return _CLIENTS[key]


class Senders:
    """Authenticated, signing HTTP clients of the test senders against one bridge."""

    def __init__(self, base: str, database_url: str) -> None:
        self.base = base
        self.database_url = database_url
        self._http: dict[str, httpx.Client] = {}

    def post(self, sender_id: str, body: dict[str, Any], path: str = SEARCH) -> httpx.Response:
        if sender_id not in self._http:
            client = client_for(self.database_url, sender_id)
            self._http[sender_id] = client.authenticated(self.base, timeout=10)
        return self._http[sender_id].post(path, json=body)

    def close(self) -> None:
        for http in self._http.values():
            http.close()


def example(name: str) -> DisclosurePolicy:
    return parse_policy((POLICIES / f"{name}.json").read_bytes())


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def policy_bridge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    url = request.getfixturevalue(
        "seeded_sqlite_url" if request.param == "sqlite" else "seeded_pg_url"
    )
    store = PolicyStore.from_url(url)
    try:
        store.set(CASH, example("cash-transfer"))
        store.set(PENSION, example("pension"))
        store.set(AGE, example("age-check"))
        store.set(
            STATS,
            DisclosurePolicy(
                query_types=["idtype-value", "predicate"],
                identifier_types=["BRN"],
                search_attributes=["birth_year"],
                fields=["sex", "birth_place.contained_in_place"],
            ),
        )
        store.set(
            LIMITED,
            DisclosurePolicy(
                query_types=["idtype-value"],
                identifier_types=["BRN"],
                fields=["birth_date"],
                requests_per_minute=3,
            ),
        )
    finally:
        store.close()
    settings = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": url,
            "DCI_BRIDGE_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        }
    )
    with serve_asgi(create_app(settings)) as base:
        yield base, url


@pytest.fixture
def http(policy_bridge: tuple[str, str]) -> Iterator[Senders]:
    senders = Senders(*policy_bridge)
    try:
        yield senders
    finally:
        senders.close()


def by(sender: str, *items: dict[str, Any], **header: Any) -> dict[str, Any]:
    return envelope(*items, sender_id=sender, **header)


def answer(response: httpx.Response, index: int = 0) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = response.json()["message"]["search_response"][index]
    return result


def brn_item(known: KnownPersons, **criteria: Any) -> dict[str, Any]:
    return item("idtype-value", {"type": "BRN", "value": known.child_brn}, **criteria)


def test_same_search_different_senders_different_minimal_answers(
    http: Senders, known: KnownPersons
) -> None:
    cash = answer(http.post(CASH, by(CASH, brn_item(known, authorize=AUTHORIZE))))
    stats = answer(http.post(STATS, by(STATS, brn_item(known))))
    assert cash["status"] == stats["status"] == "succ"
    (child_for_cash,) = cash["data"]["reg_records"]
    (child_for_stats,) = stats["data"]["reg_records"]
    assert set(child_for_cash) <= {
        "@type",
        "identifier",
        "birth_date",
        "parent1_identifier",
        "parent2_identifier",
    }
    assert child_for_cash["identifier"] == [
        {"identifier_type": "BRN", "identifier_value": known.child_brn}
    ]
    assert child_for_cash["birth_date"] == known.child_birth_date
    assert "parent1_identifier" in child_for_cash
    assert set(child_for_stats) <= {"@type", "sex", "birth_place"}
    assert child_for_stats["sex"] in {"male", "female"}
    assert set(child_for_stats["birth_place"]) <= {"@type", "contained_in_place"}
    # nothing of the full record's personal data reaches either sender
    for body in (cash, stats):
        text = json.dumps(body)
        assert known.child_given_name not in text
        assert known.child_surname not in text
        assert known.child_record_id not in text
        assert known.child_birth_facility_id not in text
    assert known.child_birth_date not in json.dumps(stats)


def test_predicate_answers_without_the_record(http: Senders, known: KnownPersons) -> None:
    dead = answer(
        http.post(
            PENSION,
            by(PENSION, item("idtype-value", {"type": "DRN", "value": known.deceased_drn})),
        )
    )
    (person,) = dead["data"]["reg_records"]
    assert person["is_deceased"] is True
    assert set(person) == {"@type", "death_date", "is_deceased"}
    alive = answer(
        http.post(
            PENSION,
            by(PENSION, item("idtype-value", {"type": "UIN", "value": known.groom_uin})),
        )
    )
    for person in alive["data"]["reg_records"]:
        assert set(person) <= {"@type", "death_date", "is_deceased"}
    consent = {
        "@type": "Consent",
        "ts": envelope()["header"]["message_ts"],
        "purpose": {"text": "age check at account opening"},
    }
    aged = answer(
        http.post(
            AGE,
            by(
                AGE,
                item("idtype-value", {"type": "UIN", "value": known.mother_uin}, consent=consent),
            ),
        )
    )
    assert aged["status"] == "succ", aged
    (mother,) = aged["data"]["reg_records"]
    assert set(mother) <= {"@type", "age_at_least_18"}
    assert mother["age_at_least_18"] is True  # mothers in the seeded population are adults


def test_sender_without_policy_is_refused(http: Senders, known: KnownPersons) -> None:
    response = http.post(NOBODY, by(NOBODY, brn_item(known)))
    body = assert_dci_error(response, 403, "err.request.forbidden", style="sync")
    assert known.child_brn not in response.text
    assert "search_response" not in json.dumps(body)


def test_query_and_identifier_types_outside_the_policy_are_refused_per_item(
    http: Senders, known: KnownPersons
) -> None:
    response = http.post(
        STATS,
        by(
            STATS,
            brn_item(known, reference_id="allowed"),
            item("idtype-value", {"type": "UIN", "value": known.mother_uin}, "uin"),
            item("expression", {"type": "x", "value": {"expression": "sex = 'female'"}}, "expr"),
            item(
                "predicate",
                [
                    {
                        "expression1": {
                            "attribute_name": "surname",
                            "operator": "eq",
                            "attribute_value": known.child_surname,
                        }
                    }
                ],
                "surname",
            ),
            item(
                "predicate",
                [
                    {
                        "expression1": {
                            "attribute_name": "birth_year",
                            "operator": "eq",
                            "attribute_value": 2020,
                        }
                    }
                ],
                "year",
            ),
            item(
                "idtype-value",
                {"type": "BRN", "value": known.child_brn},
                "page",
                pagination={"page_size": 50},
            ),
        ),
    )
    assert response.status_code == 200, response.text[:500]
    results = {r["reference_id"]: r for r in response.json()["message"]["search_response"]}
    assert results["allowed"]["status"] == "succ"
    assert results["year"]["status"] == "succ"
    for ref in ("uin", "expr", "surname"):
        assert results[ref]["status"] == "rjct", results[ref]
        assert results[ref]["status_reason_code"] == "rjct.search_criteria.invalid"
        assert "not allowed for this sender" in results[ref]["status_reason_message"]
    assert results["page"]["status_reason_code"] == "rjct.pagination.invalid"
    assert known.mother_uin not in response.text
    assert known.child_surname not in response.text


def test_consent_and_purpose_are_enforced(http: Senders, known: KnownPersons) -> None:
    missing = answer(http.post(CASH, by(CASH, brn_item(known))))
    assert missing["status"] == "rjct"
    assert missing["status_reason_code"] == "rjct.search_criteria.invalid"
    assert "authorize is required" in missing["status_reason_message"]
    wrong = {**AUTHORIZE, "purpose": {"code": "MARKETING"}}
    refused = answer(http.post(CASH, by(CASH, brn_item(known, authorize=wrong))))
    assert refused["status"] == "rjct"
    assert "purpose.code" in refused["status_reason_message"]


def test_rate_limit_exceeded(http: Senders, known: KnownPersons) -> None:
    statuses = [http.post(LIMITED, by(LIMITED, brn_item(known))).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = http.post(LIMITED, by(LIMITED, brn_item(known)))
    assert_dci_error(response, 429, "err.request.too_many_requests", style="sync")


def test_no_personal_data_in_logs(
    http: Senders, known: KnownPersons, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        http.post(CASH, by(CASH, brn_item(known, authorize=AUTHORIZE)))
        http.post(NOBODY, by(NOBODY, brn_item(known)))
    text = "\n".join(r.getMessage() for r in caplog.records)
    for value in (known.child_brn, known.child_given_name, known.child_birth_date):
        assert value not in text


@pytest.fixture(scope="module")
def async_bridge(
    seeded_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Senders, str, RecordingReceiver]]:
    store = PolicyStore.from_url(seeded_sqlite_url)
    try:
        store.set(PENSION, example("pension"))
    finally:
        store.close()
    receiver = RecordingReceiver()
    with serve_asgi(receiver) as receiver_base:
        settings = Settings.from_env(
            {
                "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
                "DCI_BRIDGE_DATA_DIR": str(tmp_path_factory.mktemp("async-data")),
                "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
                "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": f"{receiver_base}/registry/",
            }
        )
        with serve_asgi(create_app(settings)) as base:
            senders = Senders(base, seeded_sqlite_url)
            try:
                yield senders, f"{receiver_base}/registry/on-search", receiver
            finally:
                senders.close()


def test_async_search_is_minimised_and_refused_without_policy(
    async_bridge: tuple[Senders, str, RecordingReceiver], known: KnownPersons
) -> None:
    http, receiver_uri, receiver = async_bridge
    refused = http.post(
        NOBODY, by(NOBODY, brn_item(known), sender_uri=receiver_uri), "/registry/search"
    )
    assert_dci_error(refused, 403, "err.request.forbidden", style="async")
    body = by(
        PENSION,
        item("idtype-value", {"type": "DRN", "value": known.deceased_drn}),
        sender_uri=receiver_uri,
    )
    accepted = http.post(PENSION, body, "/registry/search")
    assert accepted.status_code == 200, accepted.text[:300]
    assert accepted.json()["message"]["ack_status"] == "ACK"
    deadline = time.monotonic() + 10
    while not receiver.bodies() and time.monotonic() < deadline:
        time.sleep(0.02)
    [raw] = receiver.bodies()
    [found] = json.loads(raw)["message"]["search_response"]
    [person] = found["data"]["reg_records"]
    assert set(person) == {"@type", "death_date", "is_deceased"}
    assert known.deceased_drn not in raw.decode()
    # the audit trail names the person although the callback carries no record id
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while not rows and time.monotonic() < deadline:
        rows = [
            r
            for r in read_events(http.database_url, AuditFilter(sender_id=PENSION))
            if r["message_id"] == body["header"]["message_id"]
        ]
        time.sleep(0.1)
    (row,) = rows
    assert len(row["record_ids"]) == 1
    assert row["detail"]["items"][0]["policy_revision"] >= 1


def test_audit_names_the_persons_disclosed_and_the_policy(
    http: Senders, policy_bridge: tuple[str, str], known: KnownPersons
) -> None:
    """The age-check sender never sees a record id, but the audit trail knows whom it
    asked about, under which policy revision and for which purpose."""
    consent = {
        "@type": "Consent",
        "ts": envelope()["header"]["message_ts"],
        "purpose": {"code": "AGE-CHECK"},
    }
    body = by(
        AGE, item("idtype-value", {"type": "UIN", "value": known.mother_uin}, consent=consent)
    )
    found = answer(http.post(AGE, body))
    assert "@id" not in found["data"]["reg_records"][0]
    _, url = policy_bridge
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = [
            r
            for r in read_events(url, AuditFilter(sender_id=AGE))
            if r["message_id"] == body["header"]["message_id"]
        ]
        if rows:
            break
        time.sleep(0.1)
    (row,) = rows
    assert len(row["record_ids"]) == 1
    (entry,) = row["detail"]["items"]
    assert entry["policy_revision"] >= 1
    assert entry["purpose_code"] == "AGE-CHECK"
    assert known.mother_uin not in json.dumps(row)
