"""Disclosure policies apply above the record source: the same minimised answer from a live
OpenCRVS (the simulator, over real loopback HTTP) as from the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.db.engine import migrate
from dci_bridge.records.seed import KnownPersons
from dci_bridge.registry.policy import parse_policy
from dci_bridge.settings import Settings
from tests.dci_assertions import assert_dci_error
from tests.e2e.conftest import PERSONS, SEED, envelope, item
from tests.e2e.test_upstream_source_parity import UNLIMITED, opencrvs_settings
from tests.security_support import DciTestClient
from tests.servers import serve_asgi
from tests.simulators import running_simulator

SEARCH = "/registry/sync/search"
POLICIES = Path(__file__).resolve().parents[2] / "docs" / "policies"
CASH, NOBODY = "cash.opencrvs.example.org", "nobody.opencrvs.example.org"
AUTHORIZE = {
    "@type": "Authorize",
    "ts": "2026-11-23T09:00:00Z",
    "purpose": {"code": "CHILD_GRANT"},
}


@pytest.fixture(scope="module")
def senders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, httpx.Client]]:
    folder = tmp_path_factory.mktemp("policy-opencrvs")
    database_url = f"sqlite:///{folder / 'bridge.sqlite3'}"  # senders and policies only
    migrate(database_url)
    cash_policy = parse_policy((POLICIES / "cash-transfer.json").read_bytes())
    cash = DciTestClient.register(database_url, CASH, policy=cash_policy)
    nobody = DciTestClient.register(database_url, NOBODY, policy=None)
    with running_simulator(persons=PERSONS, seed=SEED, clients=(UNLIMITED,)) as sim:
        settings: Settings = opencrvs_settings(sim.url, database_url, folder)
        with (
            serve_asgi(create_app(settings)) as base,
            cash.authenticated(base, timeout=30) as cash_http,
            nobody.authenticated(base, timeout=30) as nobody_http,
        ):
            yield {CASH: cash_http, NOBODY: nobody_http}


def test_opencrvs_answers_are_minimised(senders: dict[str, httpx.Client], known: KnownPersons):
    body = envelope(
        item("idtype-value", {"type": "BRN", "value": known.child_brn}, authorize=AUTHORIZE),
        sender_id=CASH,
    )
    response = senders[CASH].post(SEARCH, json=body)
    assert response.status_code == 200, response.text[:500]
    [found] = response.json()["message"]["search_response"]
    assert found["status"] == "succ", found
    [child] = found["data"]["reg_records"]
    assert set(child) <= {
        "@type",
        "identifier",
        "birth_date",
        "parent1_identifier",
        "parent2_identifier",
    }
    assert child["identifier"] == [{"identifier_type": "BRN", "identifier_value": known.child_brn}]
    assert child["birth_date"] == known.child_birth_date
    assert known.child_given_name not in response.text
    assert known.child_record_id not in response.text


def test_opencrvs_sender_without_policy_is_refused(
    senders: dict[str, httpx.Client], known: KnownPersons
):
    body = envelope(
        item("idtype-value", {"type": "BRN", "value": known.child_brn}), sender_id=NOBODY
    )
    assert_dci_error(senders[NOBODY].post(SEARCH, json=body), 403, "err.request.forbidden")
