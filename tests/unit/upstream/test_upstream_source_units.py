"""Units of the OpenCRVS source: breaker, plans, the GraphQL and v2 mappings, token expiry."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import EventType, ExpOperator, IdentifierType, SortOrder
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.locations import farajaland
from dci_bridge.records.mapped import RecordEvent
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    IdentifierLookup,
    Or,
    Page,
    RecordQuery,
    SortKey,
)
from dci_bridge.records.seed import generate_bundles
from dci_bridge.upstream.opencrvs.auth import token_expiry
from dci_bridge.upstream.opencrvs.breaker import CircuitBreaker, CircuitOpenError
from dci_bridge.upstream.opencrvs.graphql_map import read_registration
from dci_bridge.upstream.opencrvs.plan import EventPlan, LookupPlan, plan_query
from dci_bridge.upstream.opencrvs.v1 import _Error, is_quota_error
from dci_bridge.upstream.opencrvs.v2 import to_clauses
from dci_bridge.upstream.simulator.population import registration_json
from dci_bridge.upstream.v2_fields import from_event, to_declaration

LOCATIONS = farajaland()
RECORDS = [map_bundle(b) for b in generate_bundles(400, 7)]


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_half_opens() -> None:
    clock = FakeTime()
    breaker = CircuitBreaker(3, 10.0, now=clock)
    for _ in range(2):
        breaker.before()
        breaker.failure()
    breaker.before()
    breaker.success()  # a success resets the count
    for _ in range(3):
        breaker.before()
        breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        breaker.before()
    clock.now += 10
    assert breaker.state == "half-open"
    breaker.before()  # one trial call
    with pytest.raises(CircuitOpenError):
        breaker.before()  # and only one
    breaker.failure()
    assert breaker.state == "open"
    clock.now += 10
    breaker.before()
    breaker.success()
    assert breaker.state == "closed"


def _by_role(record):
    return msgspec.structs.replace(
        record, persons=tuple(sorted(record.persons, key=lambda p: p.role))
    )


def test_graphql_projection_reads_back_as_the_fhir_record() -> None:
    for record in RECORDS:
        back = read_registration(registration_json(record), locations=LOCATIONS)
        assert _by_role(back) == _by_role(record)


def test_v2_declaration_reads_back_into_the_same_persons() -> None:
    from dci_bridge.records.person import build_person, person_key_for
    from dci_bridge.upstream.simulator.v2 import event_document

    for record in RECORDS:
        if record.event is RecordEvent.MARRIAGE:
            continue
        back = from_event(event_document(record), LOCATIONS)
        for person in record.subjects:
            again = next(p for p in back.persons if p.role is person.role)
            key = person_key_for(record, person)
            assert (
                build_person(key, [(back, again)]).dci == build_person(key, [(record, person)]).dci
            )
        assert to_declaration(back) == to_declaration(record)


def test_lookups_become_lookup_plans() -> None:
    query = RecordQuery(
        where=And(
            (
                IdentifierLookup(IdentifierType.NID, ("123",)),
                Comparison(Attribute.SEX, ExpOperator.EQ, "female"),
            )
        )
    )
    plan = plan_query(query, LOCATIONS, max_seeds=5)
    assert plan == LookupPlan(((IdentifierType.NID, "123"),))
    many = RecordQuery(where=IdentifierLookup(IdentifierType.BRN, tuple(str(i) for i in range(6))))
    with pytest.raises(ItemRejection) as refused:
        plan_query(many, LOCATIONS, max_seeds=5)
    assert refused.value.code == "rjct.search.too_many_records_found"


def test_attribute_searches_become_advanced_search_parameters() -> None:
    facility = RECORDS[0].place.facility_id if RECORDS[0].place else None
    assert facility
    query = RecordQuery(
        where=And(
            (
                Comparison(Attribute.GIVEN_NAME, ExpOperator.EQ, "Anna"),
                Comparison(Attribute.BIRTH_DATE, ExpOperator.GT, "2020-01-01"),
                Comparison(Attribute.BIRTH_DATE, ExpOperator.LE, "2020-12-31"),
                Comparison(Attribute.BIRTH_PLACE, ExpOperator.EQ, facility),
                Comparison(Attribute.REGISTRATION_DATE, ExpOperator.GE, "2021-01-01"),
            )
        ),
        event_types=frozenset({EventType.LIVE_BIRTH}),
        sort=(SortKey(Attribute.REGISTRATION_DATE, SortOrder.ASC),),
        page=Page(2, 5),
    )
    plan = plan_query(query, LOCATIONS, max_seeds=5)
    assert isinstance(plan, EventPlan)
    assert plan.params == {
        "event": "birth",
        "registrationStatuses": ["REGISTERED", "CERTIFIED", "ISSUED"],
        "eventLocationId": facility,
        "childFirstNames": "anna",
        "childDoBStart": "2020-01-02",
        "childDoBEnd": "2020-12-31",
        "dateOfRegistrationStart": "2021-01-01T00:00:00.000Z",
    }
    assert plan.sort == [{"column": "dateOfRegistration", "order": "asc"}]
    assert not plan.impossible


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (
            RecordQuery(where=Comparison(Attribute.SEX, ExpOperator.EQ, "male")),
            "rjct.search_criteria.invalid",
        ),
        (
            RecordQuery(
                where=Or((Comparison(Attribute.SEX, ExpOperator.EQ, "male"),)),
                event_types=frozenset({EventType.DEATH}),
            ),
            "rjct.search_criteria.invalid",
        ),
        (
            RecordQuery(
                where=Comparison(Attribute.LAST_UPDATED, ExpOperator.GE, "2020-01-01"),
                event_types=frozenset({EventType.DEATH}),
            ),
            "rjct.search_criteria.invalid",
        ),
        (
            RecordQuery(
                event_types=frozenset({EventType.DEATH}), sort=(SortKey(Attribute.SURNAME),)
            ),
            "rjct.sort.invalid",
        ),
    ],
)
def test_what_opencrvs_cannot_search_is_refused(query: RecordQuery, code: str) -> None:
    with pytest.raises(ItemRejection) as refused:
        plan_query(query, LOCATIONS, max_seeds=5)
    assert refused.value.code == code
    assert "OpenCRVS" in refused.value.message


def test_contradictions_ask_nothing() -> None:
    query = RecordQuery(
        where=And(
            (
                Comparison(Attribute.DEATH_DATE, ExpOperator.GT, "2020-01-01"),
                Comparison(Attribute.DEATH_DATE, ExpOperator.LT, "2019-01-01"),
            )
        ),
        event_types=frozenset({EventType.DEATH}),
    )
    plan = plan_query(query, LOCATIONS, max_seeds=5)
    assert isinstance(plan, EventPlan)
    assert plan.impossible


def test_quota_errors_of_every_version_are_recognised() -> None:
    assert is_quota_error(_Error("Daily search quota exceeded", {"code": "INTERNAL_SERVER_ERROR"}))
    assert is_quota_error(_Error("x", {"code": "DAILY_QUOTA_EXCEEDED"}))
    assert is_quota_error(_Error("x", {"code": "RATE_LIMIT_EXCEEDED", "http": {"status": 429}}))
    assert not is_quota_error(_Error("Record not found", {"code": "NOT_FOUND"}))


def test_v2_clauses() -> None:
    clauses = to_clauses(
        {"event": "birth", "registrationStatuses": ["REGISTERED"], "nationalId": "42"}
    )
    assert clauses["clauses"][0] == {"eventType": "birth"}
    assert clauses["clauses"][2]["type"] == "or"
    with pytest.raises(ItemRejection):
        to_clauses({"event": "marriage"})


def test_token_expiry_is_read_from_the_jwt() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1234}).encode()).rstrip(b"=").decode()
    assert token_expiry(f"x.{payload}.y") == 1234
    assert token_expiry("not a jwt") is None
