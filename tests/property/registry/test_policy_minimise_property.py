"""Hypothesis: for generated policies and records, nothing outside the policy is returned.

Checked twice: on `CompiledPolicy.minimise` alone, and on the encoded sync-search envelope
the search use case builds from a record source that returns the generated persons.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci_bridge.clock import FixedClock
from dci_bridge.protocol.codec import encode
from dci_bridge.protocol.codes import IdentifierType, QueryType
from dci_bridge.protocol.crvs import (
    Address,
    CrvsPerson,
    GeoCoordinates,
    Identifier,
    Name,
    Place,
)
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.protocol.search import SearchCriteria, SearchRequest, SearchRequestItem
from dci_bridge.records.query import RecordQuery
from dci_bridge.records.source import RecordPage
from dci_bridge.registry.policy import (
    DisclosurePolicy,
    compile_policy,
    field_paths,
)
from dci_bridge.registry.policy_store import StaticPolicies
from dci_bridge.registry.search import SearchService
from dci_bridge.settings import Settings
from tests.policy_support import allowed_keys, leaks

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
ID_TYPES = ["UIN", "BRN", "DRN", "MRN", "OPENCRVS_RECORD_ID", "OPENCRVS_TRACKING_ID"]
# A marker in every generated value: a leaked value is easy to spot in the output.
text = st.text(alphabet="abcXYZ019 -", min_size=1, max_size=8).map(lambda s: f"v{s}")
dates = st.dates(dt.date(1900, 1, 1), dt.date(2026, 11, 23)).map(dt.date.isoformat)
identifiers = st.builds(
    Identifier, identifier_type=st.sampled_from(ID_TYPES), identifier_value=text
)
places = st.builds(
    Place,
    name=st.none() | text,
    address_line=st.none() | text,
    geo=st.none()
    | st.builds(
        GeoCoordinates,
        latitude=st.floats(-90, 90, allow_nan=False),
        longitude=st.floats(-180, 180, allow_nan=False),
    ),
    contained_in_place=st.none() | text,
    id=st.none() | text,
)
persons = st.builds(
    CrvsPerson,
    id=st.none() | text,
    identifier=st.lists(identifiers, max_size=4),
    name=st.none()
    | st.builds(
        Name,
        surname=st.none() | text,
        given_name=st.none() | text,
        second_name=st.none() | text,
        maiden_name=st.none() | text,
    ),
    sex=st.none() | st.sampled_from(["male", "female", "unknown"]),
    birth_date=st.none() | dates,
    birth_place=st.none() | places,
    death_date=st.none() | dates,
    death_place=st.none() | places,
    marital_status=st.none() | st.sampled_from(["S", "M", "W"]),
    marriage_date=st.none() | st.lists(dates, min_size=1, max_size=2),
    parent1_identifier=st.none() | identifiers,
    parent2_identifier=st.none() | identifiers,
    address=st.none()
    | st.lists(st.builds(Address, address_line_1=st.none() | text, locality=st.none() | text)),
    phone_number=st.none() | st.lists(text, max_size=2),
    email=st.none() | st.lists(text, max_size=2),
    registration_date=st.none() | dates,
    last_updated=st.none() | dates,
)
PATHS = field_paths() + [f"identifier[{t}]" for t in ID_TYPES]
ANSWERS = ["is_deceased", "is_alive", "age_at_least:18", "age_at_least:65"]
policies = st.builds(
    DisclosurePolicy,
    query_types=st.just(["*"]),
    identifier_types=st.just(["*"]),
    search_attributes=st.just(["*"]),
    fields=st.lists(st.sampled_from(PATHS), max_size=8, unique=True),
    answers=st.lists(st.sampled_from(ANSWERS), max_size=3, unique=True),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, person=persons)
def test_minimise_keeps_only_the_policy(policy: DisclosurePolicy, person: CrvsPerson) -> None:
    compiled = compile_policy("s", policy)
    raw = msgspec.json.encode(person)
    out = json.loads(compiled.minimise(raw, NOW.date()))
    assert leaks(out, policy) == []
    full = json.loads(raw)
    for key, value in out.items():  # what is kept is kept unchanged
        if key in full and key != "identifier" and key in policy.fields:
            assert value == full[key]


class _Source:
    def __init__(self, records: list[CrvsPerson]) -> None:
        self.records = [msgspec.Raw(msgspec.json.encode(r)) for r in records]

    async def search(self, query: RecordQuery) -> RecordPage:
        return RecordPage(self.records[: query.page.size], len(self.records))

    async def get(self, id_type: IdentifierType, value: str) -> msgspec.Raw | None:
        return None

    async def aclose(self) -> None:
        return None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, people=st.lists(persons, min_size=1, max_size=4))
def test_search_envelope_holds_nothing_outside_the_policy(
    policy: DisclosurePolicy, people: list[CrvsPerson]
) -> None:
    service = SearchService(
        _Source(people),
        Settings.from_env({}),
        FixedClock(NOW),
        _Ids(),
        policies=StaticPolicies({"sp": policy}),
    )
    header = MsgHeader(
        message_id="m1",
        message_ts="2026-11-23T10:00:00Z",
        action="search",
        sender_id="sp",
        total_count=1,
    )
    request = SearchRequest(
        transaction_id="t1",
        search_request=[
            SearchRequestItem(
                reference_id="r1",
                timestamp="2026-11-23T10:00:00Z",
                search_criteria=SearchCriteria(
                    query_type=QueryType.IDTYPE_VALUE,
                    query={"type": "UIN", "value": "1"},
                ),
            )
        ],
    )
    outcome = asyncio.run(service.search(header, request))
    body = json.loads(encode({"header": outcome.header, "message": outcome.response}))
    item = body["message"]["search_response"][0]
    assert item["status"] == "succ", item
    records = item["data"]["reg_records"]
    assert len(records) == len(people)
    for record in records:
        assert leaks(record, policy) == []
    # the full records' values appear nowhere else in the envelope either
    rest = json.dumps({**body, "message": {**body["message"], "search_response": []}})
    allowed, _ = allowed_keys(policy)
    for person in people:
        for key, value in json.loads(msgspec.json.encode(person)).items():
            if key not in allowed and isinstance(value, str):
                assert value not in rest


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def new_id(self) -> str:
        self.n += 1
        return f"id-{self.n}"
