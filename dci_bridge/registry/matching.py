"""Which subscriptions an event matches: a pure function, with the store's search semantics.

A subscription's `filter` is translated exactly like a search query (`records.translate`),
so the attribute names, operators and value rules of docs/decisions.md ("Query types") hold
for subscriptions too. Here the translated tree is evaluated in Python against one person
(`PersonFacts`, read from the store right after the event was indexed) instead of compiled
to SQL; the rules are those written at the top of `records/sql_query.py`:
text without case, places at any level of the admin hierarchy, dates as days, instants
against whole UTC days, absent values never match, `Not` is plain negation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import EventType, ExpOperator
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    Expr,
    IdentifierLookup,
    Not,
    Or,
    Value,
)
from dci_bridge.records.sql_query import (
    ID_ALIASES,
    as_bool,
    as_date,
    as_int,
    as_text,
    compare,
    compare_instant,
)

__all__ = [
    "PersonFacts",
    "SubscriptionRule",
    "evaluate",
    "facts_from_row",
    "matching",
    "place_ids",
    "rule_is_active",
]

_TEXT = {Attribute.GIVEN_NAME, Attribute.SURNAME, Attribute.SEX, Attribute.MARITAL_STATUS}
_PLACES = {Attribute.BIRTH_PLACE, Attribute.DEATH_PLACE}
_DATES = {Attribute.BIRTH_DATE, Attribute.DEATH_DATE, Attribute.MARRIAGE_DATE}
_INSTANTS = {Attribute.REGISTRATION_DATE, Attribute.LAST_UPDATED}
_INTS = {Attribute.BIRTH_YEAR, Attribute.DEATH_YEAR}


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What a filter can look at: the person's search columns and identifiers.

    `values` holds text lower-cased (marital status upper-cased) as the store does; places
    are the set of location ids at every level (facility, district, province), lower-cased.
    """

    identifiers: frozenset[tuple[str, str]] = frozenset()
    values: Mapping[Attribute, Any] = field(default_factory=dict)
    places: Mapping[Attribute, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubscriptionRule:
    """The matching part of one subscription."""

    code: str
    event_type: EventType
    where: Expr | None
    start_time: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    active: bool = True


def rule_is_active(rule: SubscriptionRule, now: dt.datetime) -> bool:
    """Subscribed, started and not expired at `now`."""
    if not rule.active:
        return False
    if rule.start_time is not None and now < rule.start_time:
        return False
    return rule.expires_at is None or now < rule.expires_at


def matching(
    rules: Iterable[SubscriptionRule], event: EventType, person: PersonFacts, now: dt.datetime
) -> list[SubscriptionRule]:
    """The active rules for this event type whose filter the person satisfies (input order)."""
    return [
        rule
        for rule in rules
        if rule.event_type is event
        and rule_is_active(rule, now)
        and (rule.where is None or evaluate(rule.where, person))
    ]


def evaluate(expr: Expr, person: PersonFacts) -> bool:
    """Whether the person satisfies the filter tree."""
    if isinstance(expr, IdentifierLookup):
        kind = ID_ALIASES.get(expr.id_type, expr.id_type)
        return any((kind.value, value) in person.identifiers for value in expr.values)
    if isinstance(expr, Comparison):
        try:
            return _comparison(expr, person)
        except ItemRejection:
            return False  # filters are checked when subscribing; never fail a fan-out
    if isinstance(expr, Not):
        return not evaluate(expr.item, person)
    if isinstance(expr, And):
        return all(evaluate(item, person) for item in expr.items)
    if isinstance(expr, Or):
        return any(evaluate(item, person) for item in expr.items)
    raise TypeError(f"unknown filter node {type(expr).__name__}")


def _values(cmp: Comparison) -> Sequence[Value]:
    return cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)


def _comparison(cmp: Comparison, person: PersonFacts) -> bool:
    attribute, op, values = cmp.attribute, cmp.op, _values(cmp)
    if attribute in _PLACES:
        if op not in (ExpOperator.EQ, ExpOperator.IN):
            return False
        ids = person.places.get(attribute, frozenset())
        return any(as_text(v, attribute).strip().lower() in ids for v in values)
    left = person.values.get(attribute)
    if left is None:
        return False
    if attribute in _TEXT:
        upper = attribute is Attribute.MARITAL_STATUS
        return any(
            compare(
                left, op, as_text(v, attribute).upper() if upper else as_text(v, attribute).lower()
            )
            for v in values
        )
    if attribute in _DATES:
        return any(compare(left, op, as_date(v, attribute)) for v in values)
    if attribute in _INSTANTS:
        return any(compare_instant(left, op, v, attribute) for v in values)
    if attribute in _INTS:
        return any(compare(left, op, as_int(v, attribute)) for v in values)
    if attribute is Attribute.IS_DECEASED:
        return op in (ExpOperator.EQ, ExpOperator.IN) and any(
            left is as_bool(v, attribute) for v in values
        )
    return False


def facts_from_row(row: Mapping[str, Any], identifiers: Iterable[tuple[str, str]]) -> PersonFacts:
    """PersonFacts from a `person` table row (as a mapping) and its identifier rows."""

    def places(*columns: str) -> frozenset[str]:
        return frozenset(str(row[c]).lower() for c in columns if row.get(c))

    values: dict[Attribute, Any] = {
        Attribute.GIVEN_NAME: row.get("given_name_lc"),
        Attribute.SURNAME: row.get("surname_lc"),
        Attribute.SEX: row.get("sex"),
        Attribute.MARITAL_STATUS: row.get("marital_status"),
        Attribute.BIRTH_DATE: row.get("birth_date"),
        Attribute.BIRTH_YEAR: row.get("birth_year"),
        Attribute.DEATH_DATE: row.get("death_date"),
        Attribute.DEATH_YEAR: row.get("death_year"),
        Attribute.MARRIAGE_DATE: row.get("marriage_date"),
        Attribute.REGISTRATION_DATE: _aware(row.get("registration_date")),
        Attribute.LAST_UPDATED: _aware(row.get("last_updated")),
        Attribute.IS_DECEASED: bool(row.get("is_deceased")),
    }
    return PersonFacts(
        identifiers=frozenset((str(k), str(v)) for k, v in identifiers),
        values=values,
        places={
            Attribute.BIRTH_PLACE: places(
                "birth_facility_id", "birth_district_id", "birth_state_id"
            ),
            Attribute.DEATH_PLACE: places(
                "death_facility_id", "death_district_id", "death_state_id"
            ),
        },
    )


def _aware(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def place_ids(expr: Expr | None) -> list[str]:
    """Every location id a filter compares a place with (to check they exist)."""
    if expr is None or isinstance(expr, IdentifierLookup):
        return []
    if isinstance(expr, Comparison):
        if expr.attribute in _PLACES:
            return [str(v).strip() for v in _values(expr)]
        return []
    if isinstance(expr, Not):
        return place_ids(expr.item)
    found: list[str] = []
    for item in expr.items:
        found.extend(place_ids(item))
    return found
