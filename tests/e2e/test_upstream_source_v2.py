"""The OpenCRVS v2 (events API) driver against the simulator's v2 mode.

v2 serves births and deaths only, so a person's answer carries no marriage; the cases here
concern persons whose records are births and deaths, and must equal the v1 driver's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.records.seed import known_persons
from dci_bridge.upstream.simulator import SEARCH_CLIENT
from tests.e2e.conftest import PERSONS, SEED, item
from tests.e2e.test_upstream_source_parity import (
    CASES,
    LiveBridge,
    answers,
    ask,
    opencrvs_settings,
    serve_bridge,
)
from tests.servers import serve_asgi
from tests.simulators import RunningSimulator, WebhookReceiver, running_simulator

KNOWN = known_persons(SEED)
UNLIMITED = msgspec.structs.replace(SEARCH_CLIENT, daily_quota=10**9)
SAME_AS_V1 = [
    "brn",
    "record id",
    "tracking id",
    "unknown brn",
    "brns in one predicate",
    "child by name and birth date",
    "nobody born then",
]


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[RunningSimulator, RunningSimulator]]:
    with (
        running_simulator(persons=PERSONS, seed=SEED, clients=(UNLIMITED,)) as v1,
        running_simulator(persons=PERSONS, seed=SEED, clients=(UNLIMITED,), generation="v2") as v2,
    ):
        yield v1, v2


@pytest.fixture(scope="module")
def bridges(
    sims: tuple[RunningSimulator, RunningSimulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LiveBridge]]:
    v1, v2 = sims
    f1, f2 = tmp_path_factory.mktemp("v1"), tmp_path_factory.mktemp("v2")
    s1 = opencrvs_settings(v1.url, f"sqlite:///{f1 / 'state.sqlite3'}", f1)
    s2 = opencrvs_settings(v2.url, f"sqlite:///{f2 / 'state.sqlite3'}", f2, generation="v2")
    with serve_bridge(s1) as a, serve_bridge(s2) as b:
        yield {"v1": a, "v2": b}


@pytest.mark.parametrize("case", SAME_AS_V1)
def test_v2_answers_like_v1(bridges: dict[str, LiveBridge], case: str) -> None:
    expected = answers(ask(bridges["v1"], CASES[case]))
    assert answers(ask(bridges["v2"], CASES[case])) == expected
    assert expected[0]["status"] == "succ"


def test_v2_uin_search_finds_births_and_deaths(bridges: dict[str, LiveBridge]) -> None:
    (answer,) = answers(
        ask(bridges["v2"], item("idtype-value", {"type": "UIN", "value": KNOWN.mother_uin}))
    )
    (person,) = answer["data"]["reg_records"]
    assert {"identifier_type": "UIN", "identifier_value": KNOWN.mother_uin} in person["identifier"]


def test_v2_refuses_marriages_and_sorting(bridges: dict[str, LiveBridge]) -> None:
    (answer,) = answers(
        ask(bridges["v2"], item("idtype-value", {"type": "MRN", "value": KNOWN.married_mrn}))
    )
    assert answer["status"] == "rjct"
    assert "OpenCRVS" in answer["status_reason_message"]


def test_v2_events_api_on_the_wire(sims: tuple[RunningSimulator, RunningSimulator]) -> None:
    _, v2 = sims
    headers = {"Authorization": f"Bearer {v2.token(UNLIMITED)}"}
    body: dict[str, Any] = {
        "query": {
            "type": "and",
            "clauses": [
                {
                    "eventType": "birth",
                    "trackingId": {"type": "exact", "term": KNOWN.child_tracking_id},
                }
            ],
        },
        "limit": 10,
        "offset": 0,
    }
    for prefix in ("/api/events", "/events"):
        found = httpx.post(f"{v2.url}{prefix}/events/search", json=body, headers=headers).json()
        assert found["total"] == 1
        (index,) = found["results"]
        assert index["legalStatuses"]["REGISTERED"]["registrationNumber"] == KNOWN.child_brn
        assert index["declaration"]["child.dob"] == KNOWN.child_birth_date
    event = httpx.get(f"{v2.url}/api/events/events/{KNOWN.child_record_id}", headers=headers).json()
    assert [a["type"] for a in event["actions"]] == ["CREATE", "DECLARE", "REGISTER"]
    assert all(a["status"] == "Accepted" for a in event["actions"])
    assert event["actions"][1]["declaration"]["child.name"]["surname"] == KNOWN.child_surname
    bad = httpx.post(f"{v2.url}/events/events/search", json={"query": {"nope": 1}}, headers=headers)
    assert bad.status_code == 400
    assert httpx.post(f"{v2.url}/events/events/search", json=body).status_code == 401


def test_v2_lifecycle_hook_on_registration(sims: tuple[RunningSimulator, RunningSimulator]) -> None:
    _, v2 = sims
    receiver = WebhookReceiver()
    with serve_asgi(receiver) as url:
        httpx.post(f"{v2.url}/_sim/hook", json={"url": url})
        try:
            result = httpx.post(
                f"{v2.url}/_sim/register", json={"event": "death"}, timeout=10
            ).json()
        finally:
            httpx.post(f"{v2.url}/_sim/hook", json={"url": ""})
    assert result["hook"]["status"] == 200
    (call,) = receiver.deliveries
    assert call.path == "/trigger/events/death/actions/REGISTER"
    assert call.headers["authorization"].startswith("Bearer ")
    assert msgspec.json.decode(call.body)["id"] == result["record_id"]
