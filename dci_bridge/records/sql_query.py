"""Compile a `RecordQuery` to SQLAlchemy Core over the `person` table (SQLite and PostgreSQL).

Semantics (the test oracle in tests/property/records implements the same rules in Python):
- Text attributes compare case-insensitively (names and sex lower-cased, marital status
  upper-cased); `gt/lt/ge/le` order by code point. BIRTH_PLACE / DEATH_PLACE take a location
  id and match it at any level (facility, district or province); only `eq` and `in`.
- Dates accept `datetime.date` values or ISO strings. REGISTRATION_DATE and LAST_UPDATED are
  instants: a date value means that whole UTC day (`eq` = within the day, `gt` = after it).
- Years are integers; IS_DECEASED is a boolean (`eq`, `in`).
- A comparison on an absent value is false, and `Not` is plain negation (two-valued logic).
- `in` with no values matches nothing. `event_types`: the person has a registered event of
  one of the types (Divorce: none are recorded, so it matches nothing).
- Order: the sort keys (absent values last in either direction), then the person key.
Queries this model cannot answer raise `ItemRejection` (`rjct.filter.invalid`,
`rjct.sort.invalid`), never a wrong answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import (
    EventType,
    ExpOperator,
    IdentifierType,
    SearchStatusReasonCode,
    SortOrder,
)
from dci_bridge.records.indexer import identifier_table, person_table
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    Expr,
    IdentifierLookup,
    Not,
    Or,
    RecordQuery,
    Value,
)

P = person_table.c
_TEXT_COLUMNS: dict[Attribute, tuple[sa.ColumnElement[Any], Callable[[str], str]]] = {
    Attribute.GIVEN_NAME: (P.given_name_lc, str.lower),
    Attribute.SURNAME: (P.surname_lc, str.lower),
    Attribute.SEX: (P.sex, str.lower),
    Attribute.MARITAL_STATUS: (P.marital_status, str.upper),
}
_PLACE_COLUMNS = {
    Attribute.BIRTH_PLACE: (P.birth_facility_id, P.birth_district_id, P.birth_state_id),
    Attribute.DEATH_PLACE: (P.death_facility_id, P.death_district_id, P.death_state_id),
}
_DATE_COLUMNS = {
    Attribute.BIRTH_DATE: P.birth_date,
    Attribute.DEATH_DATE: P.death_date,
    Attribute.MARRIAGE_DATE: P.marriage_date,
}
_INSTANT_COLUMNS = {
    Attribute.REGISTRATION_DATE: P.registration_date,
    Attribute.LAST_UPDATED: P.last_updated,
}
_INT_COLUMNS = {Attribute.BIRTH_YEAR: P.birth_year, Attribute.DEATH_YEAR: P.death_year}
EVENT_COLUMNS = {
    EventType.LIVE_BIRTH: P.has_birth,
    EventType.DEATH: P.has_death,
    EventType.MARRIAGE: P.has_marriage,
}
ID_ALIASES = {IdentifierType.NID: IdentifierType.UIN}
"""Identifier types searched as another type (OpenCRVS NID is the DCI UIN)."""
_FALSE = sa.false()


def _reject(message: str, code: str = SearchStatusReasonCode.FILTER_INVALID) -> ItemRejection:
    return ItemRejection(code, message)


def _values(cmp: Comparison) -> tuple[Value, ...]:
    if cmp.op is ExpOperator.IN:
        return cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    if isinstance(cmp.value, tuple):
        raise _reject(f"{cmp.attribute.value}: only `in` takes a list of values")
    return (cmp.value,)


def as_date(value: Value, attribute: Attribute) -> dt.date:
    """A date value: `datetime.date` (a datetime's day) or an ISO `YYYY-MM-DD` string."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise _reject(f"{attribute.value}: expected a date")


def as_instant_range(value: Value, attribute: Attribute) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of an instant value: a whole UTC day for a date, one instant otherwise."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(dt.UTC)
        return moment, moment
    if isinstance(value, str) and len(value.strip()) > 10:
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _reject(f"{attribute.value}: expected a date or an instant") from None
        return as_instant_range(parsed, attribute)
    day = as_date(value, attribute)
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return start, start + dt.timedelta(days=1)


def as_int(value: Value, attribute: Attribute) -> int:
    if isinstance(value, bool):
        raise _reject(f"{attribute.value}: expected a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise _reject(f"{attribute.value}: expected a whole number")


def as_bool(value: Value, attribute: Attribute) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise _reject(f"{attribute.value}: expected true or false")


def as_text(value: Value, attribute: Attribute) -> str:
    if isinstance(value, str):
        return clean_text(value, attribute.value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _reject(f"{attribute.value}: expected text")


def clean_text(value: str, what: str) -> str:
    """Reject NUL characters: no stored value holds one, and PostgreSQL refuses them."""
    if "\x00" in value:
        raise _reject(f"{what}: text may not contain NUL characters")
    return value


def _ordered(column: Any, op: ExpOperator, value: Any) -> sa.ColumnElement[bool]:
    if op is ExpOperator.EQ or op is ExpOperator.IN:
        result: sa.ColumnElement[bool] = column == value
    elif op is ExpOperator.GT:
        result = column > value
    elif op is ExpOperator.GE:
        result = column >= value
    elif op is ExpOperator.LT:
        result = column < value
    else:
        result = column <= value
    return result


def _present(column: Any, predicate: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return sa.and_(column.is_not(None), predicate)


def _any(items: list[sa.ColumnElement[bool]]) -> sa.ColumnElement[bool]:
    if not items:
        return _FALSE
    return items[0] if len(items) == 1 else sa.or_(*items)


def compile_comparison(cmp: Comparison) -> sa.ColumnElement[bool]:
    attribute, op = cmp.attribute, cmp.op
    values = _values(cmp)
    if attribute in _TEXT_COLUMNS:
        column, norm = _TEXT_COLUMNS[attribute]
        return _any(
            [_present(column, _ordered(column, op, norm(as_text(v, attribute)))) for v in values]
        )
    if attribute in _PLACE_COLUMNS:
        if op not in (ExpOperator.EQ, ExpOperator.IN):
            raise _reject(f"{attribute.value}: only `eq` and `in` compare places")
        ids = sorted({as_text(v, attribute).strip().lower() for v in values})
        if not ids:
            return _FALSE
        return sa.or_(*(_present(c, c.in_(ids)) for c in _PLACE_COLUMNS[attribute]))
    if attribute in _DATE_COLUMNS:
        column = _DATE_COLUMNS[attribute]
        return _any([_present(column, _ordered(column, op, as_date(v, attribute))) for v in values])
    if attribute in _INSTANT_COLUMNS:
        return _any([_instant(_INSTANT_COLUMNS[attribute], op, v, attribute) for v in values])
    if attribute in _INT_COLUMNS:
        column = _INT_COLUMNS[attribute]
        return _any([_present(column, _ordered(column, op, as_int(v, attribute))) for v in values])
    if attribute is Attribute.IS_DECEASED:
        if op not in (ExpOperator.EQ, ExpOperator.IN):
            raise _reject(f"{attribute.value}: only `eq` and `in` compare booleans")
        wanted = {as_bool(v, attribute) for v in values}
        if not wanted:
            return _FALSE
        if len(wanted) == 2:
            return sa.true()
        return P.is_deceased.is_(True) if wanted.pop() else P.is_deceased.is_(False)
    raise _reject(f"{attribute.value}: search identifiers by type and value")


def _instant(
    column: Any, op: ExpOperator, value: Value, attribute: Attribute
) -> sa.ColumnElement[bool]:
    start, end = as_instant_range(value, attribute)
    exact = start == end
    if op is ExpOperator.EQ or op is ExpOperator.IN:
        pred = column == start if exact else sa.and_(column >= start, column < end)
    elif op is ExpOperator.GT:
        pred = column > start if exact else column >= end
    elif op is ExpOperator.GE:
        pred = column >= start
    elif op is ExpOperator.LT:
        pred = column < start
    else:
        pred = column <= start if exact else column < end
    return _present(column, pred)


def lookup_types(id_type: IdentifierType) -> str:
    """The stored identifier type a look-up of `id_type` searches."""
    return ID_ALIASES.get(id_type, id_type).value


def compile_expr(expr: Expr) -> sa.ColumnElement[bool]:
    if isinstance(expr, IdentifierLookup):
        if not expr.values:
            return _FALSE
        values = sorted({clean_text(v, "identifier") for v in expr.values})
        owners = sa.select(identifier_table.c.person_key).where(
            identifier_table.c.id_type == lookup_types(expr.id_type),
            identifier_table.c.value.in_(values),
        )
        return P.person_key.in_(owners)
    if isinstance(expr, Comparison):
        return compile_comparison(expr)
    if isinstance(expr, Not):
        return sa.not_(compile_expr(expr.item))
    if isinstance(expr, And):
        return sa.and_(sa.true(), *(compile_expr(i) for i in expr.items))
    if isinstance(expr, Or):
        return _any([compile_expr(i) for i in expr.items])
    raise _reject("unsupported query expression")


def compile_where(query: RecordQuery) -> sa.ColumnElement[bool]:
    """The filter of a query: its expression tree and its event types."""
    clauses: list[sa.ColumnElement[bool]] = []
    if query.where is not None:
        clauses.append(compile_expr(query.where))
    if query.event_types:
        columns = [EVENT_COLUMNS[e] for e in sorted(query.event_types) if e in EVENT_COLUMNS]
        clauses.append(_any([c.is_(True) for c in columns]))
    return sa.and_(sa.true(), *clauses)


def _sort_column(attribute: Attribute) -> sa.ColumnElement[Any]:
    if attribute in _TEXT_COLUMNS:
        return _TEXT_COLUMNS[attribute][0]
    if attribute in _PLACE_COLUMNS:
        return sa.func.coalesce(*_PLACE_COLUMNS[attribute])
    for table in (_DATE_COLUMNS, _INSTANT_COLUMNS, _INT_COLUMNS):
        if attribute in table:
            return table[attribute]
    if attribute is Attribute.IS_DECEASED:
        return P.is_deceased
    raise _reject(f"cannot sort by {attribute.value}", SearchStatusReasonCode.SORT_INVALID)


def order_by(query: RecordQuery) -> list[sa.ColumnElement[Any]]:
    clauses: list[sa.ColumnElement[Any]] = []
    for key in query.sort:
        column = _sort_column(key.attribute)
        clauses.append(
            (column.desc() if key.order is SortOrder.DESC else column.asc()).nulls_last()
        )
    clauses.append(P.person_key.asc())
    return clauses


def page_statement(query: RecordQuery) -> sa.Select[Any]:
    """One page of matches with the total count of all matches on every row."""
    return (
        sa.select(P.dci_json, sa.func.count().over().label("total"))
        .where(compile_where(query))
        .order_by(*order_by(query))
        .limit(query.page.size)
        .offset(query.page.offset)
    )


def count_statement(query: RecordQuery) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(person_table).where(compile_where(query))


def compare(left: Any, op: ExpOperator, right: Any) -> bool:
    """`left op right` for one comparison operator (`in` compares one value at a time)."""
    if op in (ExpOperator.EQ, ExpOperator.IN):
        return bool(left == right)
    if op is ExpOperator.GT:
        return bool(left > right)
    if op is ExpOperator.GE:
        return bool(left >= right)
    if op is ExpOperator.LT:
        return bool(left < right)
    return bool(left <= right)


def compare_instant(left: dt.datetime, op: ExpOperator, value: Value, attribute: Attribute) -> bool:
    """Compare an instant with a value that may name a whole day (its `[start, end)` range)."""
    start, end = as_instant_range(value, attribute)
    if start == end:
        return compare(left, op, start)
    if op in (ExpOperator.EQ, ExpOperator.IN):
        return start <= left < end
    if op is ExpOperator.GT:
        return left >= end
    if op is ExpOperator.GE:
        return left >= start
    if op is ExpOperator.LT:
        return left < start
    return left < end
