"""Evaluate a `RecordQuery` over persons in memory, with the embedded store's semantics.

The OpenCRVS source gathers the few records an identifier search concerns, groups them
into persons (`persons.py`) and then filters, sorts and pages them here, so that its answer
is the store's answer over the same records. The rules are those documented in
`records.sql_query` (case-insensitive text, places at any level, a date compared with an
instant is that whole UTC day, absent values never match and sort last, ties by person
key); values are checked with the same helpers, so a bad value is the same `ItemRejection`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from dci_bridge.protocol.codes import EventType, SortOrder, canonical_identifier_type
from dci_bridge.records.person import PersonView
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    Expr,
    IdentifierLookup,
    Not,
    RecordQuery,
    Value,
)
from dci_bridge.records.sql_query import (
    as_bool,
    as_date,
    as_int,
    as_text,
    clean_text,
    compare,
    compare_instant,
)

_TEXT = {Attribute.GIVEN_NAME, Attribute.SURNAME, Attribute.SEX, Attribute.MARITAL_STATUS}
_PLACES = {Attribute.BIRTH_PLACE, Attribute.DEATH_PLACE}
_DATES = {Attribute.BIRTH_DATE, Attribute.DEATH_DATE, Attribute.MARRIAGE_DATE}
_INSTANTS = {Attribute.REGISTRATION_DATE, Attribute.LAST_UPDATED}
_INTS = {Attribute.BIRTH_YEAR, Attribute.DEATH_YEAR}
_EVENT_FLAGS = {
    EventType.LIVE_BIRTH: "has_birth",
    EventType.DEATH: "has_death",
    EventType.MARRIAGE: "has_marriage",
}


def _norm(attribute: Attribute, text: str) -> str:
    return text.upper() if attribute is Attribute.MARITAL_STATUS else text.lower()


def value_of(view: PersonView, attribute: Attribute) -> Any:
    if attribute in _PLACES:
        place = view.birth_place if attribute is Attribute.BIRTH_PLACE else view.death_place
        if place is None:
            return None
        ids = (place.facility_id, place.district_id, place.state_id)
        return next((i.lower() for i in ids if i), None)
    value = {
        Attribute.GIVEN_NAME: view.given_name,
        Attribute.SURNAME: view.surname,
        Attribute.SEX: view.sex,
        Attribute.MARITAL_STATUS: view.marital_status,
        Attribute.BIRTH_DATE: view.birth_date,
        Attribute.BIRTH_YEAR: view.birth_year,
        Attribute.DEATH_DATE: view.death_date,
        Attribute.DEATH_YEAR: view.death_year,
        Attribute.MARRIAGE_DATE: view.marriage_date,
        Attribute.REGISTRATION_DATE: view.registration_date,
        Attribute.LAST_UPDATED: view.last_updated,
        Attribute.IS_DECEASED: view.is_deceased,
    }[attribute]
    if attribute in _TEXT and isinstance(value, str):
        return _norm(attribute, value)
    return value


def _values(cmp: Comparison) -> tuple[Value, ...]:
    if isinstance(cmp.value, tuple):
        return cmp.value
    return (cmp.value,)


def comparison(view: PersonView, cmp: Comparison) -> bool:
    attribute, op, values = cmp.attribute, cmp.op, _values(cmp)
    if attribute in _PLACES:
        place = view.birth_place if attribute is Attribute.BIRTH_PLACE else view.death_place
        ids = (
            {i.lower() for i in (place.facility_id, place.district_id, place.state_id) if i}
            if place
            else set()
        )
        return any(as_text(v, attribute).strip().lower() in ids for v in values)
    left = value_of(view, attribute)
    if left is None:
        return False
    if attribute in _TEXT:
        return any(compare(left, op, _norm(attribute, as_text(v, attribute))) for v in values)
    if attribute in _DATES:
        return any(compare(left, op, as_date(v, attribute)) for v in values)
    if attribute in _INSTANTS:
        return any(compare_instant(left, op, v, attribute) for v in values)
    if attribute in _INTS:
        return any(compare(left, op, as_int(v, attribute)) for v in values)
    return any(left is as_bool(v, attribute) for v in values)


def matches(view: PersonView, expr: Expr) -> bool:
    if isinstance(expr, IdentifierLookup):
        kind = canonical_identifier_type(expr.id_type)
        return any((kind, clean_text(v, "identifier")) in view.identifiers for v in expr.values)
    if isinstance(expr, Comparison):
        return comparison(view, expr)
    if isinstance(expr, Not):
        return not matches(view, expr.item)
    if isinstance(expr, And):
        return all(matches(view, item) for item in expr.items)
    return any(matches(view, item) for item in expr.items)


def select(views: Sequence[PersonView], query: RecordQuery) -> tuple[list[PersonView], int]:
    """(the requested page, the number of all matches) of `views` for `query`."""
    found = [
        v
        for v in views
        if (query.where is None or matches(v, query.where))
        and (
            not query.event_types
            or any(getattr(v, _EVENT_FLAGS[e]) for e in query.event_types if e in _EVENT_FLAGS)
        )
    ]

    def order(a: PersonView, b: PersonView) -> int:
        for key in query.sort:
            x, y = value_of(a, key.attribute), value_of(b, key.attribute)
            if x == y:
                continue
            if x is None:
                return 1
            if y is None:
                return -1
            result = -1 if x < y else 1
            return -result if key.order is SortOrder.DESC else result
        return (a.person_key > b.person_key) - (a.person_key < b.person_key)

    found.sort(key=functools.cmp_to_key(order))
    return found[query.page.offset : query.page.offset + query.page.size], len(found)
