"""Disclosure policy documents, request checks, answers and consent (pure functions)."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import EventType, IdentifierType, QueryType, SortOrder
from dci_bridge.protocol.crvs import CrvsPerson, Identifier, Name
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    IdentifierLookup,
    Page,
    RecordQuery,
    SortKey,
)
from dci_bridge.registry.policy import (
    UNRESTRICTED,
    DisclosurePolicy,
    PolicyError,
    compile_policy,
    parse_policy,
    record_id,
)

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
PERSON = CrvsPerson(
    id="urn:uuid:1",
    identifier=[
        Identifier(identifier_type="UIN", identifier_value="5075363015"),
        Identifier(identifier_type="BRN", identifier_value="2008BABCDEF"),
    ],
    name=Name(surname="Banda", given_name="Chanda"),
    sex="female",
    birth_date="2008-11-24",
    parent1_identifier=Identifier(identifier_type="UIN", identifier_value="1317149051"),
)
RAW = msgspec.json.encode(PERSON)


def compiled(**document):
    return compile_policy("sp", parse_policy(document))


TODAY = NOW.date()


def minimised(policy, raw=RAW, today=TODAY):
    return json.loads(policy.minimise(raw, today))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"fields": ["name.nickname"]}, "unknown CRVS_Person field path"),
        ({"fields": ["identifier[PASSPORT]"]}, "unknown identifier type"),
        ({"identifier_types": ["SSN"]}, "unknown identifier type"),
        ({"query_types": ["sql"]}, "query_types: unknown value"),
        ({"search_attributes": ["eye_colour"]}, "search_attributes: unknown value"),
        ({"event_types": ["Baptism"]}, "event_types: unknown value"),
        ({"answers": ["is_rich"]}, "answers: unknown answer"),
        ({"answers": ["age_at_least:0"]}, "answers: unknown answer"),
        ({"max_page_size": 0}, "max_page_size"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"consent": {"purposes": [" "]}}, "purpose code cannot be empty"),
        ({"fieldz": ["sex"]}, "unknown field `fieldz`"),
        ({"consent": {"required": True}}, "unknown field `required`"),
    ],
)
def test_a_bad_document_is_refused_naming_the_key(document, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_defaults_allow_nothing():
    policy = compile_policy("sp", DisclosurePolicy())
    with pytest.raises(ItemRejection) as exc:
        policy.check_query_type(QueryType.IDTYPE_VALUE)
    assert exc.value.code == "rjct.search_criteria.invalid"
    assert minimised(policy) == {"@type": "CRVS_Person"}


def test_unrestricted_returns_the_record_unchanged():
    policy = compile_policy("sp", UNRESTRICTED)
    assert policy.passthrough
    assert policy.minimise(RAW) is RAW


def test_fields_and_identifier_types_select_what_is_returned():
    policy = compiled(fields=["identifier[BRN]", "birth_date", "name.given_name"])
    assert minimised(policy) == {
        "@type": "CRVS_Person",
        "identifier": [{"identifier_type": "BRN", "identifier_value": "2008BABCDEF"}],
        "name": {"given_name": "Chanda"},
        "birth_date": "2008-11-24",
    }
    # NID is the national id: identifiers carry it as UIN
    policy = compiled(fields=["identifier[NID]"])
    assert minimised(policy)["identifier"] == [
        {"identifier_type": "UIN", "identifier_value": "5075363015"}
    ]
    # no identifier of an allowed type: the field is absent, not an empty list
    assert "identifier" not in minimised(compiled(fields=["identifier[DRN]"]))


def test_a_non_person_record_leaks_nothing():
    policy = compiled(fields=["birth_date"])
    other = b'{"@type": "Member", "birth_date": "2000-01-01", "name": "x"}'
    assert minimised(policy, other) == {"@type": "CRVS_Person"}
    untyped = b'{"birth_date": "2000-01-01", "name": {"surname": "x"}}'
    assert minimised(policy, untyped) == {"@type": "CRVS_Person", "birth_date": "2000-01-01"}
    assert minimised(policy, b"not json") == {"@type": "CRVS_Person"}


@pytest.mark.parametrize(
    ("birth", "today", "years", "expected"),
    [
        ("2008-11-24", dt.date(2026, 11, 23), 18, False),  # the day before the birthday
        ("2008-11-24", dt.date(2026, 11, 24), 18, True),  # on the birthday
        ("2008-02-29", dt.date(2026, 2, 28), 18, False),  # leap-day birthday: turns on 1 March
        ("2008-02-29", dt.date(2026, 3, 1), 18, True),
        ("2008", dt.date(2026, 6, 1), 18, None),  # only the year: undecidable mid-year
        ("2008", dt.date(2027, 1, 1), 18, True),  # ...but decidable next year
        ("2008", dt.date(2025, 12, 31), 18, False),
        ("2008-11", dt.date(2026, 12, 1), 18, True),
        ("2008-11", dt.date(2026, 11, 15), 18, None),
    ],
)
def test_age_at_least(birth, today, years, expected):
    person = msgspec.json.encode(CrvsPerson(birth_date=birth))
    out = minimised(compiled(answers=[f"age_at_least:{years}"]), person, today)
    assert out.get(f"age_at_least_{years}") == expected
    assert "birth_date" not in out


def test_alive_or_deceased_without_the_record():
    policy = compiled(answers=["is_deceased", "is_alive"])
    assert minimised(policy) == {"@type": "CRVS_Person", "is_deceased": False, "is_alive": True}
    dead = msgspec.json.encode(CrvsPerson(death_date="2024-03-01"))
    assert minimised(policy, dead) == {
        "@type": "CRVS_Person",
        "is_deceased": True,
        "is_alive": False,
    }
    drn_only = msgspec.json.encode(
        CrvsPerson(identifier=[Identifier(identifier_type="DRN", identifier_value="D1")])
    )
    assert minimised(policy, drn_only)["is_deceased"] is True


def test_answers_follow_the_kept_fields():
    policy = compiled(fields=["identifier[UIN]"], answers=["age_at_least:18"])
    assert minimised(policy, today=dt.date(2030, 1, 1)) == {
        "@type": "CRVS_Person",
        "identifier": [{"identifier_type": "UIN", "identifier_value": "5075363015"}],
        "age_at_least_18": True,
    }


def test_restrict_checks_identifiers_attributes_sort_and_events():
    policy = compiled(
        query_types=["idtype-value", "predicate"],
        identifier_types=["UIN"],
        search_attributes=["birth_date"],
        event_types=["LiveBirth"],
    )
    ok = RecordQuery(
        where=And(
            (
                IdentifierLookup(IdentifierType.UIN, ("1",)),
                Comparison(Attribute.BIRTH_DATE, "ge", dt.date(2000, 1, 1)),  # type: ignore[arg-type]
            )
        ),
        sort=(SortKey(Attribute.BIRTH_DATE, SortOrder.ASC),),
        page=Page(1, 5),
    )
    # no event filter: limited to the allowed events
    assert policy.restrict(ok).event_types == frozenset({EventType.LIVE_BIRTH})
    for query, code, path in [
        (
            RecordQuery(where=IdentifierLookup(IdentifierType.BRN, ("1",))),
            "rjct.search_criteria.invalid",
            "search_criteria.query",
        ),
        (
            RecordQuery(where=Comparison(Attribute.SURNAME, "eq", "x")),  # type: ignore[arg-type]
            "rjct.search_criteria.invalid",
            "search_criteria.query",
        ),
        (
            RecordQuery(sort=(SortKey(Attribute.SURNAME),)),
            "rjct.sort.invalid",
            "search_criteria.sort[0].attribute_name",
        ),
        (
            RecordQuery(event_types=frozenset({EventType.DEATH})),
            "rjct.search_criteria.invalid",
            "search_criteria.reg_record_type",
        ),
    ]:
        with pytest.raises(ItemRejection) as exc:
            policy.restrict(query)
        assert (exc.value.code, exc.value.path) == (code, path)
        assert "1" not in exc.value.message
    with pytest.raises(ItemRejection):
        policy.check_query_type(QueryType.EXPRESSION)
    policy.check_query_type(QueryType.PREDICATE)


def test_page_sizes_are_capped_by_the_policy():
    policy = compiled(max_page_size=5)
    assert policy.page_sizes(10, 100) == (5, 5)
    assert compiled(max_page_size=500).page_sizes(10, 100) == (10, 100)


CONSENT = {
    "@context": "https://schema.spdci.org/common/v1/api-schemas/Consent.jsonld",
    "@type": "Consent",
    "ts": "2026-11-20T08:00:00Z",
    "purpose": {"text": "Child grant eligibility", "code": "CASH-TRANSFER"},
}


def test_consent_is_optional_unless_required():
    policy = compiled()
    assert policy.check_consent(None, None, NOW).consent is False
    assert policy.check_consent("", "", NOW).consent is False  # the official samples
    info = policy.check_consent(CONSENT, None, NOW)
    assert (info.consent, info.purpose_code) == (True, "CASH-TRANSFER")
    # loosely read when the policy does not rely on it: the spec example's schema fragments
    loose = {**CONSENT, "ts": {"$ref": "#/x"}, "purpose": {"code": {"type": "string"}}}
    assert policy.check_consent(loose, None, NOW).purpose_code is None


@pytest.mark.parametrize(
    ("consent", "authorize", "path"),
    [
        (None, None, "search_criteria.consent"),
        ("yes", None, "search_criteria.consent"),
        ({**CONSENT, "@type": "Authorize"}, None, "search_criteria.consent.@type"),
        ({**CONSENT, "ts": None}, None, "search_criteria.consent.ts"),
        ({**CONSENT, "ts": "2026-11-20"}, None, "search_criteria.consent.ts"),
        ({**CONSENT, "ts": "2026-11-24T08:00:00Z"}, None, "search_criteria.consent.ts"),
        ({**CONSENT, "ts": "2025-01-01T08:00:00Z"}, None, "search_criteria.consent.ts"),
        (
            {**CONSENT, "purpose": {"code": "MARKETING"}},
            None,
            "search_criteria.consent.purpose.code",
        ),
        (CONSENT, None, "search_criteria.authorize"),
    ],
)
def test_required_consent_is_checked(consent, authorize, path):
    policy = compiled(
        consent={
            "require_consent": True,
            "require_authorize": path == "search_criteria.authorize",
            "purposes": ["CASH-TRANSFER"],
            "max_age_days": 365,
        }
    )
    with pytest.raises(ItemRejection) as exc:
        policy.check_consent(consent, authorize, NOW)
    assert exc.value.code == "rjct.search_criteria.invalid"
    assert exc.value.path == path


def test_purpose_may_come_from_the_authorisation():
    policy = compiled(consent={"require_authorize": True, "purposes": ["PENSION"]})
    authorize = {
        "@type": "Authorize",
        "ts": "2026-11-23T09:00:00+02:00",
        "purpose": {"code": "PENSION"},
    }
    info = policy.check_consent(None, authorize, NOW)
    assert (info.authorize, info.purpose_code, info.consent) == (True, "PENSION", False)


def test_record_id_reads_the_person_id():
    assert record_id(RAW) == "urn:uuid:1"
    assert record_id(b"{}") is None
