"""A pure-Python oracle: evaluate a RecordQuery over PersonViews with the store's semantics.

It restates the rules documented in `dci_bridge.records.sql_query` without SQL, so the
property test can compare the store against an independent reading of the same rules.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from dci_bridge.protocol.codes import EventType, ExpOperator, IdentifierType, SortOrder
from dci_bridge.records.person import PersonView
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    Expr,
    IdentifierLookup,
    Not,
    RecordQuery,
)

TEXT = {Attribute.GIVEN_NAME, Attribute.SURNAME, Attribute.SEX, Attribute.MARITAL_STATUS}
PLACES = {Attribute.BIRTH_PLACE, Attribute.DEATH_PLACE}
DATES = {Attribute.BIRTH_DATE, Attribute.DEATH_DATE, Attribute.MARRIAGE_DATE}
INSTANTS = {Attribute.REGISTRATION_DATE, Attribute.LAST_UPDATED}
INTS = {Attribute.BIRTH_YEAR, Attribute.DEATH_YEAR}


def _norm(attribute: Attribute, text: str) -> str:
    return text.upper() if attribute is Attribute.MARITAL_STATUS else text.lower()


def value_of(view: PersonView, attribute: Attribute) -> Any:
    raw = {
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
    }
    if attribute in PLACES:
        place = view.birth_place if attribute is Attribute.BIRTH_PLACE else view.death_place
        if place is None:
            return None
        ids = (place.facility_id, place.district_id, place.state_id)
        return next((i.lower() for i in ids if i), None)  # the sort key: most specific level
    value = raw[attribute]
    if attribute in TEXT and value is not None:
        return _norm(attribute, value)
    return value


def _place_ids(view: PersonView, attribute: Attribute) -> set[str]:
    place = view.birth_place if attribute is Attribute.BIRTH_PLACE else view.death_place
    if place is None:
        return set()
    return {i.lower() for i in (place.facility_id, place.district_id, place.state_id) if i}


def _compare(left: Any, op: ExpOperator, right: Any) -> bool:
    if op in (ExpOperator.EQ, ExpOperator.IN):
        return bool(left == right)
    if op is ExpOperator.GT:
        return bool(left > right)
    if op is ExpOperator.GE:
        return bool(left >= right)
    if op is ExpOperator.LT:
        return bool(left < right)
    return bool(left <= right)


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _instant(left: dt.datetime, op: ExpOperator, value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return _compare(left, op, value.astimezone(dt.UTC))
    start = dt.datetime.combine(_day(value), dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    if op in (ExpOperator.EQ, ExpOperator.IN):
        return start <= left < end
    if op is ExpOperator.GT:
        return left >= end
    if op is ExpOperator.GE:
        return left >= start
    if op is ExpOperator.LT:
        return left < start
    return left < end


def comparison(view: PersonView, cmp: Comparison) -> bool:
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    attribute = cmp.attribute
    if attribute in PLACES:
        ids = _place_ids(view, attribute)
        return any(str(v).strip().lower() in ids for v in values)
    left = value_of(view, attribute)
    if left is None:
        return False
    if attribute in TEXT:
        return any(_compare(left, cmp.op, _norm(attribute, str(v))) for v in values)
    if attribute in DATES:
        return any(_compare(left, cmp.op, _day(v)) for v in values)
    if attribute in INSTANTS:
        return any(_instant(left, cmp.op, v) for v in values)
    if attribute in INTS:
        return any(_compare(left, cmp.op, int(v)) for v in values)
    return any(left is v for v in values)  # IS_DECEASED, booleans only


def matches(view: PersonView, expr: Expr) -> bool:
    if isinstance(expr, IdentifierLookup):
        kind = IdentifierType.UIN if expr.id_type is IdentifierType.NID else expr.id_type
        return any((kind, value) in view.identifiers for value in expr.values)
    if isinstance(expr, Comparison):
        return comparison(view, expr)
    if isinstance(expr, Not):
        return not matches(view, expr.item)
    if isinstance(expr, And):
        return all(matches(view, item) for item in expr.items)
    return any(matches(view, item) for item in expr.items)


_EVENT_FLAGS = {
    EventType.LIVE_BIRTH: "has_birth",
    EventType.DEATH: "has_death",
    EventType.MARRIAGE: "has_marriage",
}


def run(views: Sequence[PersonView], query: RecordQuery) -> tuple[list[str], int]:
    """(person keys of the requested page, total number of matches)."""
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
                return 1  # absent values last, in either direction
            if y is None:
                return -1
            result = -1 if x < y else 1
            return -result if key.order is SortOrder.DESC else result
        return -1 if a.person_key < b.person_key else (1 if a.person_key > b.person_key else 0)

    found.sort(key=functools.cmp_to_key(order))
    page = found[query.page.offset : query.page.offset + query.page.size]
    return [v.person_key for v in page], len(found)
