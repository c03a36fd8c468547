"""The same DCI searches against both record sources give the same DCI answers.

One bridge over the embedded store (seeded), one over the OpenCRVS simulator (the same
seeded population, served as OpenCRVS v1.x GraphQL), both over real loopback HTTP. Every
case of `CASES` is asked of both bridges; the answers must be identical apart from ids and
times. Queries the OpenCRVS source cannot answer are refused per item, never answered wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.records.seed import KnownPersons, known_persons
from dci_bridge.settings import Settings
from dci_bridge.upstream.simulator import SEARCH_CLIENT
from tests.e2e.conftest import PERSONS, SEED, envelope, item, sender_for
from tests.servers import serve_asgi
from tests.simulators import RunningSimulator, running_simulator

SEARCH = "/registry/sync/search"
KNOWN = known_persons(SEED)
UNLIMITED = msgspec.structs.replace(SEARCH_CLIENT, daily_quota=10**9)


@dataclass
class LiveBridge:
    url: str
    http: httpx.Client
    """Authenticates and signs like the registered client `spp.example.org`."""


@contextlib.contextmanager
def serve_bridge(settings: Settings) -> Iterator[LiveBridge]:
    """The bridge over real loopback HTTP, with a registered client (security helpers)."""
    sender = sender_for(settings.database_url)
    with (
        serve_asgi(create_app(settings)) as base,
        sender.authenticated(base, timeout=30) as http,
    ):
        yield LiveBridge(base, http)


def opencrvs_settings(sim_url: str, database_url: str, data_dir: Path, **upstream: str) -> Settings:
    env = {
        "DCI_BRIDGE_DATABASE__URL": database_url,
        "DCI_BRIDGE_DATA_DIR": str(data_dir),
        "DCI_BRIDGE_UPSTREAM__SOURCE": "opencrvs",
        "DCI_BRIDGE_UPSTREAM__AUTH_URL": sim_url,
        "DCI_BRIDGE_UPSTREAM__GATEWAY_URL": sim_url,
        "DCI_BRIDGE_UPSTREAM__WEBHOOKS_URL": sim_url,
        "DCI_BRIDGE_UPSTREAM__CLIENT_ID": SEARCH_CLIENT.client_id,
        "DCI_BRIDGE_UPSTREAM__CLIENT_SECRET": SEARCH_CLIENT.client_secret,
    }
    env.update({f"DCI_BRIDGE_UPSTREAM__{k.upper()}": v for k, v in upstream.items()})
    return Settings.from_env(env)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(persons=PERSONS, seed=SEED, clients=(UNLIMITED,)) as running:
        yield running


@pytest.fixture(scope="module")
def bridges(
    sim: RunningSimulator, seeded_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LiveBridge]]:
    folder = tmp_path_factory.mktemp("bridge")
    embedded = Settings.from_env(
        {
            "DCI_BRIDGE_DATABASE__URL": seeded_sqlite_url,
            "DCI_BRIDGE_DATA_DIR": str(tmp_path_factory.mktemp("embedded")),
        }
    )
    live = opencrvs_settings(sim.url, f"sqlite:///{folder / 'state.sqlite3'}", folder)
    with serve_bridge(embedded) as a, serve_bridge(live) as b:
        yield {"embedded": a, "opencrvs": b}


def ask(bridge: LiveBridge, *items: dict[str, Any]) -> dict[str, Any]:
    response = bridge.http.post(SEARCH, json=envelope(*items))
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def answers(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The search_response items without what differs per call (times)."""
    return [
        {k: v for k, v in answer.items() if k != "timestamp"}
        for answer in body["message"]["search_response"]
    ]


def _idtype(id_type: str, value: str) -> dict[str, Any]:
    return item("idtype-value", {"type": id_type, "value": value})


def _expr(text: str, **criteria: Any) -> dict[str, Any]:
    return item("expression", {"type": "dci-bridge", "value": {"expression": text}}, **criteria)


def _pred(*exprs: dict[str, Any], **criteria: Any) -> dict[str, Any]:
    query = [{"seq_num": i + 1, "expression1": e} for i, e in enumerate(exprs)]
    return item("predicate", query, **criteria)


def _cases(k: KnownPersons) -> dict[str, dict[str, Any]]:
    birth = {"reg_event_type": "LiveBirth"}
    return {
        "brn": _idtype("BRN", k.child_brn),
        "record id": _idtype("OPENCRVS_RECORD_ID", k.child_record_id),
        "tracking id": _idtype("OPENCRVS_TRACKING_ID", k.child_tracking_id),
        "uin of a mother": _idtype("UIN", k.mother_uin),
        "nid alias": _idtype("NID", k.mother_uin),
        "drn": _idtype("DRN", k.deceased_drn),
        "mrn names both spouses": _idtype("MRN", k.married_mrn),
        "uin of a groom": _idtype("UIN", k.groom_uin),
        "unknown brn": _idtype("BRN", "1999BNOSUCH"),
        "uin with an event filter": item(
            "idtype-value", {"type": "UIN", "value": k.mother_uin}, reg_event_type="Marriage"
        ),
        "uin with a death filter": item(
            "idtype-value", {"type": "UIN", "value": k.mother_uin}, reg_event_type="Death"
        ),
        "uin with a condition": _expr(f"UIN = '{k.mother_uin}' and sex = 'female'"),
        "uin with a failing condition": _expr(f"UIN = '{k.mother_uin}' and birth_year < 1900"),
        "brns in one predicate": _pred(
            {
                "attribute_name": "BRN",
                "operator": "in",
                "attribute_value": [k.child_brn, "1999BNOSUCH"],
            }
        ),
        "child by name and birth date": _expr(
            f"given_name = '{k.child_given_name}' and surname = '{k.child_surname}'"
            f" and birth_date = {k.child_birth_date}",
            **birth,
        ),
        "child by name, date range and place": _pred(
            {"attribute_name": "surname", "operator": "eq", "attribute_value": k.child_surname},
            {"attribute_name": "DOB", "operator": "ge", "attribute_value": k.child_birth_date},
            {"attribute_name": "DOB", "operator": "le", "attribute_value": k.child_birth_date},
            {
                "attribute_name": "birth_place",
                "operator": "eq",
                "attribute_value": k.child_birth_facility_id,
            },
            **birth,
        ),
        "nobody born then": _expr("birth_date = 1800-01-01", **birth),
    }


CASES = _cases(KNOWN)


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_sources_give_the_same_answer(bridges: dict[str, LiveBridge], case: str) -> None:
    request = CASES[case]
    expected = answers(ask(bridges["embedded"], request))
    got = answers(ask(bridges["opencrvs"], request))
    assert got == expected
    assert expected[0]["status"] == "succ"


def test_uin_answer_aggregates_every_event_of_the_person(bridges: dict[str, LiveBridge]) -> None:
    (answer,) = answers(ask(bridges["opencrvs"], _idtype("UIN", KNOWN.bride_uin)))
    (person,) = answer["data"]["reg_records"]
    ids = {(i["identifier_type"], i["identifier_value"]) for i in person["identifier"]}
    assert ("MRN", KNOWN.married_mrn) in ids
    assert person["marital_status"] == "M"


def test_a_batch_of_both_kinds_answers_item_by_item(bridges: dict[str, LiveBridge]) -> None:
    items = [
        {**_idtype("BRN", KNOWN.child_brn), "reference_id": "a"},
        {
            **_expr("given_name = 'X' or surname = 'Y'", reg_event_type="LiveBirth"),
            "reference_id": "b",
        },
        {**_idtype("DRN", KNOWN.deceased_drn), "reference_id": "c"},
    ]
    got = answers(ask(bridges["opencrvs"], *items))
    expected = answers(ask(bridges["embedded"], *items))
    assert got[0] == expected[0]
    assert got[2] == expected[2]
    assert got[1]["status"] == "rjct"
    assert got[1]["status_reason_code"] == "rjct.search_criteria.invalid"
    assert "not supported by the OpenCRVS record source" in got[1]["status_reason_message"]


@pytest.mark.parametrize(
    ("request_item", "reason"),
    [
        (_expr("given_name = 'Anna'"), "rjct.search_criteria.invalid"),  # no event type
        (_expr("marital_status = 'M'", reg_event_type="LiveBirth"), "rjct.search_criteria.invalid"),
        (
            _expr("given_name = 'A' or given_name = 'B'", reg_event_type="Death"),
            "rjct.search_criteria.invalid",
        ),
        (
            _expr(
                "surname = 'Banda'",
                reg_event_type="LiveBirth",
                sort=[{"attribute_name": "surname"}],
            ),
            "rjct.sort.invalid",
        ),
    ],
)
def test_what_opencrvs_cannot_answer_is_refused(
    bridges: dict[str, LiveBridge], request_item: dict[str, Any], reason: str
) -> None:
    (answer,) = answers(ask(bridges["opencrvs"], request_item))
    assert answer["status"] == "rjct"
    assert answer["status_reason_code"] == reason
    assert "OpenCRVS" in answer["status_reason_message"]


def test_attribute_search_pages_are_fetched_no_more(
    bridges: dict[str, LiveBridge], sim: RunningSimulator
) -> None:
    request = _expr(f"surname = '{KNOWN.child_surname}'", reg_event_type="LiveBirth")
    request["search_criteria"]["pagination"] = {"page_size": 3, "page_number": 2}
    before = sim.app.fetches
    (answer,) = answers(ask(bridges["opencrvs"], request))
    assert answer["status"] == "succ"
    assert answer["pagination"]["page_size"] == 3
    assert answer["pagination"]["total_count"] > 6
    assert len(answer["data"]["reg_records"]) == 3
    assert sim.app.fetches - before == 3
    for person in answer["data"]["reg_records"]:
        assert person["name"]["surname"].lower() == KNOWN.child_surname.lower()


def test_many_persons_agree_by_uin_and_brn(
    bridges: dict[str, LiveBridge], seeded_sqlite_url: str
) -> None:
    """A sweep: the first persons of the population, by every UIN and BRN they hold."""
    import sqlalchemy as sa

    engine = sa.create_engine(seeded_sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id_type, value FROM person_identifier WHERE id_type = 'UIN'"
                " ORDER BY person_key LIMIT 100"
            )
        ).all()
    engine.dispose()
    items = [
        {**_idtype(kind, value), "reference_id": f"r{i}"} for i, (kind, value) in enumerate(rows)
    ]
    for start in range(0, len(items), 20):
        chunk = items[start : start + 20]
        assert answers(ask(bridges["opencrvs"], *chunk)) == answers(
            ask(bridges["embedded"], *chunk)
        )


def test_readiness_reports_the_upstream(bridges: dict[str, LiveBridge]) -> None:
    answer = httpx.get(f"{bridges['opencrvs'].url}/ready", timeout=10)
    assert answer.status_code == 200, answer.text
    assert "upstream" in answer.text
