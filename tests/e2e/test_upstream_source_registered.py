"""Only registered records leave the OpenCRVS source, and look-ups fetch a bounded number.

A record that OpenCRVS holds but has not registered (here the digest's birth bundle, still
`WAITING_VALIDATION`) is invisible through the bridge by every identifier it carries, until
it is registered. The simulator is really started on loopback with a population of its own
(records are added to it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from dci_bridge.upstream.simulator import SEARCH_CLIENT
from tests.e2e.conftest import envelope, item
from tests.e2e.test_upstream_source_parity import LiveBridge, opencrvs_settings, serve_bridge
from tests.simulators import RunningSimulator, running_simulator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "opencrvs"
UNLIMITED = msgspec.structs.replace(SEARCH_CLIENT, daily_quota=10**9)
REG_STATUS = "http://opencrvs.org/specs/reg-status"


def _bundle(status: str) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(
        (FIXTURES / "fhir-birth-bundle.opencrvs-core-v1.8.3.json").read_text()
    )
    bundle = copy.deepcopy(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Task":
            for coding in resource["businessStatus"]["coding"]:
                if coding["system"] == REG_STATUS:
                    coding["code"] = status
    return bundle


def _identifiers(bundle: dict[str, Any]) -> dict[str, str]:
    task = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task")
    found = {i["system"].rsplit("/", 1)[-1]: i["value"] for i in task["identifier"]}
    return {
        "BRN": found["birth-registration-number"],
        "OPENCRVS_TRACKING_ID": found["birth-tracking-id"],
    }


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with running_simulator(persons=120, clients=(UNLIMITED,)) as running:  # its own population
        yield running


@pytest.fixture
def bridge(sim: RunningSimulator, tmp_path: Path) -> Iterator[LiveBridge]:
    settings = opencrvs_settings(sim.url, f"sqlite:///{tmp_path / 'bridge.sqlite3'}", tmp_path)
    with serve_bridge(settings) as live:
        yield live


def _records(bridge: LiveBridge, id_type: str, value: str) -> tuple[list[Any], int]:
    request = item("idtype-value", {"type": id_type, "value": value})
    response = bridge.http.post("/registry/sync/search", json=envelope(request))
    assert response.status_code == 200, response.text[:300]
    (answer,) = response.json()["message"]["search_response"]
    assert answer["status"] == "succ"
    return answer["data"]["reg_records"], answer["pagination"]["total_count"]


def test_a_record_is_invisible_until_registered(sim: RunningSimulator, bridge: LiveBridge) -> None:
    waiting = _bundle("WAITING_VALIDATION")
    identifiers = _identifiers(waiting)
    added = httpx.post(f"{sim.url}/_sim/register", json={"event": "birth", "bundle": waiting})
    assert added.status_code == 201
    fetches = sim.app.fetches
    for id_type, value in identifiers.items():
        assert _records(bridge, id_type, value) == ([], 0)
    assert sim.app.fetches == fetches  # OpenCRVS was asked for registered records only

    registered = _bundle("REGISTERED")
    added = httpx.post(f"{sim.url}/_sim/register", json={"event": "birth", "bundle": registered})
    assert added.status_code == 201
    for id_type, value in identifiers.items():
        records, total = _records(bridge, id_type, value)
        assert total == 1
        held = {(i["identifier_type"], i["identifier_value"]) for i in records[0]["identifier"]}
        assert (id_type, value) in held
