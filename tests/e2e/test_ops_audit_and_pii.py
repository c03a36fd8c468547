"""The audit trail and the no-personal-data rule, against a served, seeded bridge.

Audit: every search message becomes one row with hashed queries, the declared purpose and
the returned person ids; `dci-bridge audit` filters and exports them. Logs: a whole search
workload (every query type, errors included) is run with every logger at DEBUG, and not one
identifier or name of the seeded population may appear in the captured output.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from litestar import Litestar

from dci_bridge.api.app import create_app
from dci_bridge.cli import main
from dci_bridge.db.engine import create_sync_engine
from dci_bridge.ops.logs import JsonFormatter
from dci_bridge.records.seed import KnownPersons
from dci_bridge.registry.audit import AuditFilter, hash_with, read_events
from dci_bridge.settings import Settings
from tests.e2e.conftest import envelope, item, sender_for
from tests.security_support import DciTestClient
from tests.servers import serve_asgi

SEARCH = "/registry/sync/search"
CONSENT = {"@type": "Consent", "ts": "2026-11-23T10:00:00Z", "purpose": {"text": "child grant"}}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def audited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Litestar, str]]:
    url = request.getfixturevalue(
        "seeded_sqlite_url" if request.param == "sqlite" else "seeded_pg_url"
    )
    sender_for(url)  # registers spp.example.org (and migrates)
    env = {
        "DCI_BRIDGE_DATABASE__URL": url,
        "DCI_BRIDGE_DATA_DIR": str(tmp_path_factory.mktemp("audit-data")),
        "DCI_BRIDGE_AUDIT__FLUSH_INTERVAL_MS": "50",
    }
    app = create_app(Settings.from_env(env))
    with serve_asgi(app) as base:
        yield base, app, url


_CLIENTS: dict[tuple[str, str], DciTestClient] = {}


def _client(url: str, sender_id: str = "spp.example.org") -> DciTestClient:
    """A registered, signing client per (database, sender)."""
    if sender_id == "spp.example.org":
        return sender_for(url)
    if (url, sender_id) not in _CLIENTS:
        _CLIENTS[(url, sender_id)] = DciTestClient.register(url, sender_id=sender_id)
    return _CLIENTS[(url, sender_id)]


def _flush(app: Litestar, base: str) -> None:
    """Wait until the served app's audit buffer is committed (flush interval: 50 ms)."""
    trail = app.state.bridge.audit
    deadline = time.monotonic() + 10
    while trail.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert trail.pending == 0


def test_each_search_is_audited_with_hashed_query_purpose_and_record_ids(
    audited: tuple[str, Litestar, str], known: KnownPersons
) -> None:
    base, app, url = audited
    sender = "audit-probe.example.org"
    body = envelope(
        item(
            "idtype-value",
            {"type": "BRN", "value": known.child_brn},
            consent=CONSENT,
            authorize={"purpose": "eligibility"},
        ),
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
            reference_id="ref-2",
            pagination={"page_size": 2, "page_number": 1},
        ),
        sender_id=sender,
    )
    with _client(url, sender).authenticated(base, timeout=10) as http:
        response = http.post(SEARCH, json=body)
    assert response.status_code == 200
    answered = response.json()["message"]["search_response"]
    expected_ids = [
        person["@id"].removeprefix("urn:uuid:")
        for answer in answered
        for person in answer["data"]["reg_records"]
    ]
    _flush(app, base)
    (row,) = list(read_events(url, AuditFilter(sender_id=sender)))
    assert row["action"] == "search"
    assert row["message_id"] == body["header"]["message_id"]
    assert row["transaction_id"] == "txn-1"
    assert row["item_count"] == 2
    assert row["record_ids"] == expected_ids
    assert row["record_count"] == len(expected_ids) >= 2
    first, second = row["detail"]["items"]
    assert first["consent"] == CONSENT
    assert first["authorize"] == {"purpose": "eligibility"}
    assert first["query"]["type"] == "BRN"
    assert set(first["query"]["value"]) == {"hmac"}
    assert second["query"][0]["expression1"]["attribute_name"] == "surname"
    text = json.dumps(row)
    assert known.child_brn not in text
    assert known.child_surname not in text

    # found again by the identifier (hashed the same way) and by a returned person id
    by_identifier = list(read_events(url, AuditFilter(identifier=("BRN", known.child_brn))))
    assert row["id"] in [r["id"] for r in by_identifier]
    by_record = list(read_events(url, AuditFilter(record_id=expected_ids[0])))
    assert row["id"] in [r["id"] for r in by_record]


def test_audit_cli_lists_and_exports_with_filters(
    audited: tuple[str, Litestar, str], known: KnownPersons, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, app, url = audited
    for sender in ("cli-a.example.org", "cli-b.example.org", "cli-a.example.org"):
        body = envelope(
            item("idtype-value", {"type": "BRN", "value": known.child_brn}), sender_id=sender
        )
        with _client(url, sender).authenticated(base, timeout=10) as http:
            assert http.post(SEARCH, json=body).status_code == 200
    _flush(app, base)
    for key in [k for k in os.environ if k.startswith("DCI_BRIDGE_")]:
        monkeypatch.delenv(key)
    runner = CliRunner()
    common = ["--database-url", url, "--sender", "cli-a.example.org"]

    listed = runner.invoke(main, ["audit", "list", *common])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("cli-a.example.org") == 2
    assert "cli-b.example.org" not in listed.output

    exported = runner.invoke(main, ["audit", "export", "--format", "json", *common])
    assert exported.exit_code == 0, exported.output
    rows = json.loads(exported.output)
    assert [r["sender_id"] for r in rows] == ["cli-a.example.org"] * 2
    assert rows[0]["id"] < rows[1]["id"]

    as_csv = runner.invoke(main, ["audit", "export", "--format", "csv", *common])
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert len(table) == 2
    assert table[0]["action"] == "search"
    assert known.child_brn not in as_csv.output

    future = runner.invoke(main, ["audit", "export", *common, "--since", "2999-01-01"])
    assert future.exit_code == 0
    assert json.loads(future.output) == []
    window = runner.invoke(
        main, ["audit", "export", "--format", "jsonl", *common, "--until", "2999-01-01T00:00Z"]
    )
    assert len(window.output.splitlines()) == 2
    who = runner.invoke(
        main,
        ["audit", "list", "--database-url", url, "--identifier", f"BRN:{known.child_brn}"],
    )
    assert who.exit_code == 0
    assert "cli-b.example.org" in who.output
    bad = runner.invoke(main, ["audit", "list", "--database-url", url, "--identifier", "x"])
    assert bad.exit_code == 2


def test_audit_key_is_shared_through_the_database(audited: tuple[str, Litestar, str]) -> None:
    _, app, url = audited
    engine = create_sync_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            key_hex = conn.execute(sa.text("SELECT key_hex FROM audit_key WHERE id = 1")).scalar()
    finally:
        engine.dispose()
    assert app.state.bridge.audit.hash_value("X1") == hash_with(bytes.fromhex(key_hex), "X1")


# -- no personal data in logs ----------------------------------------------------------------


def _population_secrets(url: str) -> tuple[set[str], set[str]]:
    """Every identifier value and every name of the seeded population."""
    engine = create_sync_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            ids = {r[0] for r in conn.execute(sa.text("SELECT value FROM person_identifier"))}
            names: set[str] = set()
            for given, surname in conn.execute(sa.text("SELECT given_name, surname FROM person")):
                names.update(n for n in (given, surname) if n)
    finally:
        engine.dispose()
    return ids, names


def _workload(known: KnownPersons) -> list[dict[str, Any]]:
    ids = [
        ("BRN", known.child_brn),
        ("UIN", known.mother_uin),
        ("DRN", known.deceased_drn),
        ("MRN", known.married_mrn),
        ("UIN", known.bride_uin),
        ("OPENCRVS_RECORD_ID", known.child_record_id),
        ("OPENCRVS_TRACKING_ID", known.child_tracking_id),
        ("NOT_A_TYPE", known.mother_uin),
    ]
    bodies = [envelope(item("idtype-value", {"type": t, "value": v})) for t, v in ids]
    name_query = (
        f"given_name = '{known.child_given_name}' and surname = '{known.child_surname}'"
        f" and birth_date = {known.child_birth_date}"
    )
    bodies.append(
        envelope(item("expression", {"type": "ns:dci:expr", "value": {"expression": name_query}}))
    )
    bodies.append(
        envelope(
            item(
                "expression",
                {"type": "x", "value": {"expression": f"surname ~ '{known.child_surname}'"}},
            )
        )
    )
    bodies.append(
        envelope(
            item(
                "predicate",
                [
                    {
                        "expression1": {
                            "attribute_name": "surname",
                            "operator": "eq",
                            "attribute_value": known.child_surname,
                        },
                        "condition": "and",
                        "expression2": {
                            "attribute_name": "birth_date",
                            "operator": "eq",
                            "attribute_value": known.child_birth_date,
                        },
                    }
                ],
            )
        )
    )
    bodies.append(
        envelope(
            item(
                "predicate",
                [
                    {
                        "expression1": {
                            "attribute_name": known.child_surname,
                            "operator": "eq",
                            "attribute_value": 1,
                        }
                    }
                ],
            )
        )
    )
    # header errors carrying personal data in odd places
    bodies.append(
        envelope(
            item("idtype-value", {"type": "BRN", "value": known.child_brn}),
            receiver_id=known.mother_uin,
        )
    )
    bodies.append(
        envelope(item("idtype-value", {"type": "BRN", "value": known.child_brn}), total_count=7)
    )
    return bodies


def test_no_identifier_or_name_of_the_population_reaches_the_logs(
    audited: tuple[str, Litestar, str], known: KnownPersons
) -> None:
    base, app, url = audited
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    # httpx/httpcore are this test's own HTTP client (it logs the URLs it calls), not the bridge
    handler.addFilter(lambda record: not record.name.startswith(("httpx", "httpcore")))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with _client(url).authenticated(base, timeout=10) as http:
            for body in _workload(known):
                http.post(SEARCH, json=body)
            broken = json.dumps(_workload(known)[0]).replace('"header"', '"header" x', 1)
            http.post(SEARCH, content=broken, headers=_json())
            http.post(SEARCH, content=known.child_brn.encode(), headers=_json())
            http.post(SEARCH, content=b"{}", headers={"Content-Type": "text/plain"})
            http.get(f"/registry/{known.child_brn}")
        _flush(app, base)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    logged = stream.getvalue()
    assert logged.count('"msg":"request"') >= len(_workload(known)), logged[:2000]
    ids, names = _population_secrets(url)
    assert known.child_brn in ids
    assert known.child_surname in names
    leaked_ids = sorted(i for i in ids if i in logged)
    assert leaked_ids == [], f"identifiers in logs: {leaked_ids[:5]}"
    leaked_names = sorted(
        n for n in names if len(n) >= 3 and re.search(rf"\b{re.escape(n)}\b", logged)
    )
    assert leaked_names == [], f"names in logs: {leaked_names[:5]}"
    assert known.child_birth_date not in logged


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}
