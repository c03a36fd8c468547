"""The typed fast path of `fetchRegistration` reads exactly like the tolerant dict reader.

`V1Driver` decodes a record straight into msgspec structs and maps them without walking
dicts (`read_registration_struct`); anything that does not fit the structs goes to
`read_registration`. Both must give the same `MappedRecord`, or the same `MappingError`,
for every answer the structs accept: the seed population, the digest's fixture, and
hypothesis-mutated answers (nulls, blanks, padded text, other union members, odd dates).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci_bridge.records._fhir import MappingError
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.locations import farajaland
from dci_bridge.records.mapped import MappedRecord
from dci_bridge.records.seed import generate_bundles
from dci_bridge.upstream.opencrvs.graphql_map import (
    GqlRegistrationRecord,
    PlaceCache,
    read_registration,
    read_registration_struct,
)
from dci_bridge.upstream.opencrvs.transport import UpstreamAnswer
from dci_bridge.upstream.opencrvs.v1 import _read_fetch
from dci_bridge.upstream.simulator.population import registration_json

LOCATIONS = farajaland()
ANSWERS = [registration_json(map_bundle(b), LOCATIONS) for b in generate_bundles(300, 11)]
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "opencrvs"
_DECODE = msgspec.json.Decoder(GqlRegistrationRecord)


def both(answer: dict[str, Any], places: PlaceCache | None = None) -> tuple[Any, Any] | None:
    """(dict reader's outcome, typed reader's outcome), or None when the structs refuse the
    answer (the driver then uses the dict reader alone)."""
    raw = json.dumps(answer).encode()
    try:
        typed = _DECODE.decode(raw)
    except msgspec.ValidationError:
        return None

    def run(read: Any, value: Any) -> MappedRecord | tuple[str, str]:
        try:
            return read(value, locations=LOCATIONS)  # type: ignore[no-any-return]
        except MappingError as exc:
            return ("MappingError", str(exc))

    def typed_read(value: GqlRegistrationRecord, locations: Any) -> MappedRecord:
        return read_registration_struct(value, locations=locations, places=places)

    return run(read_registration, json.loads(raw)), run(typed_read, typed)


def test_the_seed_population_reads_the_same_both_ways() -> None:
    places: PlaceCache = {}
    for answer in ANSWERS * 2:  # the second pass reads places from the cache
        outcome = both(answer, places)
        assert outcome is not None
        assert isinstance(outcome[0], MappedRecord)
        assert outcome[0] == outcome[1]


def test_the_gateway_fixture_reads_the_same_both_ways() -> None:
    body = (FIXTURE / "gateway-fetchRegistration-response.dci-crvs-api.json").read_bytes()
    record = _read_fetch(UpstreamAnswer(200, body))
    assert isinstance(record, GqlRegistrationRecord)  # the documented shape: fast path
    outcome = both(json.loads(body)["data"]["fetchRegistration"])
    assert outcome is not None
    assert outcome[0] == outcome[1]


def test_an_answer_of_another_shape_goes_to_the_dict_reader() -> None:
    answer = copy.deepcopy(ANSWERS[0])
    answer["child"]["gender"] = 7  # not a string: the dict reader reads it as absent
    body = json.dumps({"data": {"fetchRegistration": answer}}).encode()
    record = _read_fetch(UpstreamAnswer(200, body))
    assert isinstance(record, dict)
    assert read_registration(record, locations=LOCATIONS).child.sex is None  # type: ignore[union-attr]


ODD = st.sampled_from(
    [None, "", "  ", " padded ", "x", "2020-02-30", "2020-13", "1999", True, 3, [], {}]
)
ROLES = ["child", "mother", "father", "deceased", "spouse", "bride", "groom", "informant"]
PERSON_KEYS = [
    "id", "name", "gender", "birthDate", "maritalStatus", "dateOfMarriage", "identifier",
    "address", "telecom", "detailsExist", "deceased",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    answer = copy.deepcopy(draw(st.sampled_from(ANSWERS)))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.sampled_from(["top", "registration", "status", "person", "location"]))
        value = draw(ODD)
        if where == "top":
            key = draw(st.sampled_from(["__typename", "id", "createdAt", *ROLES]))
            answer[key] = draw(st.sampled_from([value, "DeathRegistration", "Other"]))
        elif where == "registration" and isinstance(answer.get("registration"), dict):
            key = draw(st.sampled_from(["type", "trackingId", "registrationNumber", "status"]))
            answer["registration"][key] = value
        elif where == "status" and isinstance(answer.get("registration"), dict):
            statuses = answer["registration"].get("status")
            if isinstance(statuses, list) and statuses and isinstance(statuses[-1], dict):
                key = draw(st.sampled_from(["type", "timestamp", "office"]))
                statuses[-1][key] = value
        elif where == "person":
            person = answer.get(draw(st.sampled_from(ROLES)))
            if isinstance(person, dict):
                key = draw(st.sampled_from(PERSON_KEYS))
                inner = person.get(key)
                if isinstance(inner, list) and inner and draw(st.booleans()):
                    item = inner[draw(st.integers(0, len(inner) - 1))]
                    if isinstance(item, dict) and item and draw(st.booleans()):
                        item[draw(st.sampled_from(sorted(item)))] = value
                    else:
                        inner.append(value)
                else:
                    person[key] = value
        elif where == "location" and isinstance(answer.get("eventLocation"), dict):
            key = draw(st.sampled_from(["id", "name", "type", "partOf", "address"]))
            answer["eventLocation"][key] = value
    return answer


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_answers_read_the_same_both_ways(answer: dict[str, Any]) -> None:
    outcome = both(answer, {})
    if outcome is not None:
        assert outcome[0] == outcome[1]


@pytest.mark.parametrize("answer", ANSWERS[:20])
def test_remembered_places_are_the_resolved_places(answer: dict[str, Any]) -> None:
    places: PlaceCache = {}
    first = both(answer, places)
    again = both(answer, places)
    assert first is not None
    assert again is not None
    assert first[1] == again[1] == first[0]
