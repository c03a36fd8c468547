"""What OpenCRVS can answer: a DCI `RecordQuery` as OpenCRVS searches, or a clear refusal.

Two kinds of plan:
- `LookupPlan`: the query names identifiers (UIN/NID, BRN, DRN, MRN, record id, tracking id),
  alone or AND-ed with other conditions. The source finds every record naming those
  identifiers, follows the persons' national ids and BRNs to their other records, and
  answers from those persons exactly as the embedded store does (filters, sort, paging in
  memory over a few records).
- `EventPlan`: no identifier; a conjunction of comparisons OpenCRVS's
  `advancedSearchParameters` can express about the subject of ONE event type (Birth: the
  child, Death: the deceased). OpenCRVS counts and pages the records; each record's subject
  is one person. Order: newest registration first (OpenCRVS's order) unless sorted by
  registration date.
Anything else (OR/NOT over attributes, `ne`-style ranges OpenCRVS has no parameter for,
marital status, last update, places that are not Farajaland locations, several event
types...) is refused per item with `rjct.search_criteria.invalid` (sort: `rjct.sort.invalid`)
and a message saying the OpenCRVS source cannot answer it: never a wrong answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import (
    EventType,
    ExpOperator,
    IdentifierType,
    SearchStatusReasonCode,
    SortOrder,
)
from dci_bridge.records.locations import Jurisdiction, LocationIndex
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    Expr,
    IdentifierLookup,
    Or,
    RecordQuery,
)
from dci_bridge.records.sql_query import as_date, as_instant_range, as_int, as_text, clean_text

REGISTERED = ["REGISTERED", "CERTIFIED", "ISSUED"]
"""OpenCRVS statuses of a registered record (a printed certificate is still registered)."""

CRITERIA = SearchStatusReasonCode.SEARCH_CRITERIA_INVALID
UNSUPPORTED = "not supported by the OpenCRVS record source"


def refuse(what: str, code: str = CRITERIA) -> ItemRejection:
    return ItemRejection(code, f"{what}: {UNSUPPORTED}")


SEED_PARAMS: dict[IdentifierType, tuple[str, str | None]] = {
    IdentifierType.UIN: ("nationalId", None),
    IdentifierType.NID: ("nationalId", None),
    IdentifierType.BRN: ("registrationNumber", "birth"),
    IdentifierType.DRN: ("registrationNumber", "death"),
    IdentifierType.MRN: ("registrationNumber", "marriage"),
    IdentifierType.OPENCRVS_RECORD_ID: ("recordId", None),
    IdentifierType.OPENCRVS_TRACKING_ID: ("trackingId", None),
}


def seed_params(id_type: IdentifierType, value: str) -> dict[str, Any]:
    """`advancedSearchParameters` finding every registered record naming this identifier."""
    name, event = SEED_PARAMS[id_type]
    params: dict[str, Any] = {name: value, "registrationStatuses": REGISTERED}
    if event is not None:
        params["event"] = event
    return params


class LookupPlan(msgspec.Struct, frozen=True):
    seeds: tuple[tuple[IdentifierType, str], ...]


@dataclass(slots=True)
class EventPlan:
    event: str  # "birth" | "death"
    params: dict[str, Any] = field(default_factory=dict)
    sort: list[dict[str, str]] = field(default_factory=list)
    impossible: bool = False
    """Contradictory conditions (two different names...): nothing can match, ask nothing."""


def _lookup_seeds(expr: Expr | None) -> list[tuple[IdentifierType, str]] | None:
    if isinstance(expr, IdentifierLookup):
        return [(expr.id_type, clean_text(v, "identifier")) for v in expr.values]
    if isinstance(expr, And):
        for item in expr.items:
            seeds = _lookup_seeds(item)
            if seeds is not None:
                return seeds
        return None
    if isinstance(expr, Or) and expr.items:
        found: list[tuple[IdentifierType, str]] = []
        for item in expr.items:
            seeds = _lookup_seeds(item)
            if seeds is None:
                return None
            found.extend(seeds)
        return found
    return None


def plan_query(
    query: RecordQuery, locations: LocationIndex, *, max_seeds: int
) -> LookupPlan | EventPlan:
    """The plan for `query`, or `ItemRejection` when OpenCRVS cannot answer it."""
    seeds = _lookup_seeds(query.where)
    if seeds is not None:
        unique = tuple(dict.fromkeys(seeds))
        if len(unique) > max_seeds:
            raise ItemRejection(
                SearchStatusReasonCode.TOO_MANY_RECORDS_FOUND,
                f"at most {max_seeds} identifiers per search with the OpenCRVS record source",
            )
        return LookupPlan(unique)
    return _event_plan(query, locations)


# --- attribute searches on one event type -----------------------------------------------

_SUBJECT = {"birth": "child", "death": "deceased"}
_NAME_PARAMS = {
    ("birth", Attribute.GIVEN_NAME): "childFirstNames",
    ("birth", Attribute.SURNAME): "childLastName",
    ("birth", Attribute.SEX): "childGender",
    ("death", Attribute.GIVEN_NAME): "deceasedFirstNames",
    ("death", Attribute.SURNAME): "deceasedFamilyName",
    ("death", Attribute.SEX): "deceasedGender",
}
_EVENT_DATE = {"birth": Attribute.BIRTH_DATE, "death": Attribute.DEATH_DATE}
_EVENT_YEAR = {"birth": Attribute.BIRTH_YEAR, "death": Attribute.DEATH_YEAR}
_EVENT_PLACE = {"birth": Attribute.BIRTH_PLACE, "death": Attribute.DEATH_PLACE}


def _event_of(query: RecordQuery) -> str:
    if query.event_types == frozenset({EventType.LIVE_BIRTH}):
        return "birth"
    if query.event_types == frozenset({EventType.DEATH}):
        return "death"
    raise refuse(
        "a search without an identifier needs exactly one event type, Birth or Death"
        " (reg_event_type)"
    )


def _conjuncts(expr: Expr | None) -> list[Comparison]:
    if expr is None:
        return []
    if isinstance(expr, Comparison):
        return [expr]
    if isinstance(expr, And):
        found: list[Comparison] = []
        for item in expr.items:
            found.extend(_conjuncts(item))
        return found
    raise refuse("OR and NOT between conditions")


class _Range:
    """Inclusive day bounds collected from eq/gt/ge/lt/le comparisons."""

    def __init__(self) -> None:
        self.low: dt.date | None = None
        self.high: dt.date | None = None

    def add(self, op: ExpOperator, day: dt.date) -> None:
        low = high = None
        if op in (ExpOperator.EQ, ExpOperator.IN):
            low = high = day
        elif op is ExpOperator.GE:
            low = day
        elif op is ExpOperator.GT:
            low = day + dt.timedelta(days=1)
        elif op is ExpOperator.LE:
            high = day
        else:
            high = day - dt.timedelta(days=1)
        if low is not None:
            self.low = low if self.low is None else max(self.low, low)
        if high is not None:
            self.high = high if self.high is None else min(self.high, high)

    @property
    def empty(self) -> bool:
        return self.low is not None and self.high is not None and self.low > self.high


def _single(cmp: Comparison) -> Any:
    if isinstance(cmp.value, tuple):
        if len(cmp.value) != 1:
            raise refuse(f"{cmp.attribute.value}: `in` with several values")
        return cmp.value[0]
    return cmp.value


def _place_param(location_id: str, locations: LocationIndex) -> str:
    """eventLocationId for a facility, eventLocationLevel1/2 for a province/district."""
    found = locations.get(location_id)
    if found is None:
        raise refuse("a place that is not a known location id")
    if found.jurisdiction is Jurisdiction.STATE:
        return "eventLocationLevel1"
    if found.jurisdiction is Jurisdiction.DISTRICT:
        return "eventLocationLevel2"
    return "eventLocationId"


def _event_plan(query: RecordQuery, locations: LocationIndex) -> EventPlan:
    event = _event_of(query)
    plan = EventPlan(event, {"event": event, "registrationStatuses": REGISTERED})
    dates = {"dob": _Range(), "event": _Range(), "registered": _Range()}
    text: dict[str, str] = {}
    for cmp in _conjuncts(query.where):
        attribute, op = cmp.attribute, cmp.op
        value = _single(cmp)
        param = _NAME_PARAMS.get((event, attribute))
        if param is not None:
            if op not in (ExpOperator.EQ, ExpOperator.IN):
                raise refuse(f"{attribute.value}: comparisons other than `eq`")
            wanted = as_text(value, attribute).strip().lower()
            if text.setdefault(param, wanted) != wanted:
                plan.impossible = True
        elif attribute is Attribute.BIRTH_DATE:
            dates["dob" if event == "death" else "event"].add(op, as_date(value, attribute))
        elif attribute is _EVENT_DATE[event]:
            dates["event"].add(op, as_date(value, attribute))
        elif attribute is _EVENT_YEAR[event] or (
            attribute is Attribute.BIRTH_YEAR and event == "death"
        ):
            year = as_int(value, attribute)
            target = dates["event"] if attribute is _EVENT_YEAR[event] else dates["dob"]
            if not 1 <= year <= 9999:
                plan.impossible = True
                continue
            first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
            if op in (ExpOperator.EQ, ExpOperator.IN):
                target.add(ExpOperator.GE, first)
                target.add(ExpOperator.LE, last)
            elif op in (ExpOperator.GE, ExpOperator.LT):
                target.add(op, first)
            else:
                target.add(op, last)
        elif attribute is _EVENT_PLACE[event]:
            if op not in (ExpOperator.EQ, ExpOperator.IN):
                raise refuse(f"{attribute.value}: comparisons other than `eq`")
            location_id = as_text(value, attribute).strip().lower()
            key = _place_param(location_id, locations)
            if plan.params.setdefault(key, location_id) != location_id:
                plan.impossible = True
        elif attribute is Attribute.REGISTRATION_DATE:
            start, end = as_instant_range(value, attribute)
            if start != end:  # a whole UTC day
                dates["registered"].add(op, start.date())
            else:
                raise refuse(f"{attribute.value}: compared with an instant (give a date)")
        else:
            raise refuse(f"{attribute.value} in a search without an identifier")
    plan.params.update(text)
    if any(r.empty for r in dates.values()):
        plan.impossible = True
    dob = dates["dob"] if event == "death" else dates["event"]
    prefix = _SUBJECT[event]
    if event == "birth":
        _put_range(plan.params, f"{prefix}DoB", dob)
    else:
        _put_range(plan.params, f"{prefix}DoB", dates["dob"])
        _put_range(plan.params, "dateOfEvent", dates["event"])
    reg = dates["registered"]
    if reg.low is not None:
        plan.params["dateOfRegistrationStart"] = f"{reg.low.isoformat()}T00:00:00.000Z"
    if reg.high is not None:
        plan.params["dateOfRegistrationEnd"] = f"{reg.high.isoformat()}T23:59:59.999Z"
    plan.sort = _sort(query)
    return plan


def _put_range(params: dict[str, Any], name: str, bounds: _Range) -> None:
    if bounds.low is not None and bounds.low == bounds.high:
        params[name] = bounds.low.isoformat()
        return
    if bounds.low is not None:
        params[f"{name}Start"] = bounds.low.isoformat()
    if bounds.high is not None:
        params[f"{name}End"] = bounds.high.isoformat()


def _sort(query: RecordQuery) -> list[dict[str, str]]:
    if not query.sort:
        return []
    if len(query.sort) == 1 and query.sort[0].attribute is Attribute.REGISTRATION_DATE:
        order = "desc" if query.sort[0].order is SortOrder.DESC else "asc"
        return [{"column": "dateOfRegistration", "order": order}]
    raise refuse("sorting other than by registration_date", SearchStatusReasonCode.SORT_INVALID)
