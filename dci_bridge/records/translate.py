"""Translate a DCI `search_criteria` into the backend-neutral `RecordQuery`.

Every way a criteria can be wrong becomes an `ItemRejection` with the standard's per-item
reason code, so one bad search item never fails its neighbours. Messages name fields and
attributes, never the values searched for (they may be personal data).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codec import decode_query
from dci_bridge.protocol.codes import (
    EventType,
    ExpCondition,
    ExpOperator,
    IdentifierType,
    QueryType,
    RecordType,
    RegistryType,
    SearchStatusReasonCode,
    canonical_identifier_type,
    parse_event_type,
    parse_record_type,
    parse_registry_type,
)
from dci_bridge.protocol.search import (
    ExpressionQuery,
    IdTypeValueQuery,
    PaginationRequest,
    Predicate,
    PredicateItem,
    SearchCriteria,
    SortItem,
)
from dci_bridge.records.expression import ExpressionSyntaxError, RawValue, parse_expression
from dci_bridge.records.query import (
    ATTRIBUTE_KINDS,
    And,
    Attribute,
    Comparison,
    Expr,
    IdentifierLookup,
    Not,
    Or,
    Page,
    RecordQuery,
    SortKey,
    Value,
    ValueKind,
    parse_attribute,
)

CRITERIA = SearchStatusReasonCode.SEARCH_CRITERIA_INVALID
MAX_IN_VALUES = 100
MAX_PREDICATES = 50
# The identifier types a client may name; NID is OpenCRVS's name for the national id (UIN).
_ID_TYPES = {t.value.lower(): t for t in IdentifierType}


def translate_criteria(
    criteria: SearchCriteria,
    *,
    item_pagination: PaginationRequest | None,
    default_page_size: int,
    max_page_size: int,
) -> RecordQuery:
    """Build the query for one search item, or raise `ItemRejection`."""
    _check_registry_type(criteria.reg_type)
    events = _event_filter(criteria)
    where = _query_expr(criteria.query_type, criteria.query)
    sort = tuple(_sort_key(item, i) for i, item in enumerate(criteria.sort or ()))
    pagination = criteria.pagination or item_pagination
    page = _page(pagination, default_page_size=default_page_size, max_page_size=max_page_size)
    return RecordQuery(where=where, event_types=events, sort=sort, page=page)


def translate_filter(filter_type: QueryType | None, raw: Any) -> Expr | None:
    """A subscription `filter` as a filter tree (None: no filter); raises `ItemRejection`.

    Same shapes and rules as a search `query`. Without `filter_type` the shape decides: a
    list is a predicate, `{type, value: {expression}}` an expression, `{type, value}` an
    identifier look-up. An empty filter (`null`, `{}`, `[]`) matches every event.
    """
    if raw is None or raw == {} or raw == []:
        return None
    if filter_type is None:
        if isinstance(raw, list):
            filter_type = QueryType.PREDICATE
        elif isinstance(raw, dict) and isinstance(raw.get("value"), dict):
            filter_type = QueryType.EXPRESSION
        else:
            filter_type = QueryType.IDTYPE_VALUE
    return _query_expr(filter_type, raw)


_SERVED_REGISTRY_TYPES = (RegistryType.CIVIL, RegistryType.UNKNOWN)
_GRAPHQL = QueryType.GRAPHQL
_EQ, _IN = ExpOperator.EQ, ExpOperator.IN
_ID_OPERATORS = (_EQ, _IN)
# enum members held as module constants: in Python 3.11 each `Enum.X` read goes through
# EnumType's attribute hook (0.2 us on the bench machine, 20x a module name), and these
# run for every search item


def _check_registry_type(value: str | None) -> None:
    if value is None or value == "":
        return
    parsed = parse_registry_type(value)
    if parsed not in _SERVED_REGISTRY_TYPES:
        raise ItemRejection(
            CRITERIA,
            "reg_type is not served by this civil registry",
            path="search_criteria.reg_type",
        )


def _event_filter(criteria: SearchCriteria) -> frozenset[EventType]:
    """Vital events a person must have: from `reg_event_type` (older spelling) or an event
    code given as `reg_record_type` (seen in clients); `Person` means no event filter."""
    found: set[EventType] = set()
    for field, value in (
        ("reg_event_type", criteria.reg_event_type),
        ("reg_record_type", criteria.reg_record_type),
    ):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ItemRejection(
                CRITERIA, f"{field} must be a string", path=f"search_criteria.{field}"
            )
        event = parse_event_type(value)
        if event is not None:
            found.add(event)
            continue
        record_type = parse_record_type(value)
        if field == "reg_record_type" and record_type is RecordType.PERSON:
            continue
        raise ItemRejection(
            CRITERIA,
            f"{field} is not a record or event type of this registry",
            path=f"search_criteria.{field}",
        )
    return frozenset(found)


def _query_expr(query_type: QueryType, raw: Any) -> Expr:
    if query_type is _GRAPHQL:
        raise ItemRejection(
            CRITERIA, "query_type graphql is not supported", path="search_criteria.query_type"
        )
    try:
        query = decode_query(query_type, raw)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        raise ItemRejection(
            CRITERIA,
            f"query does not match query_type {query_type.value}: {exc}",
            path="search_criteria.query",
        ) from None
    if isinstance(query, IdTypeValueQuery):
        return _identifier(query.type, _EQ, query.value, path="search_criteria.query")
    if isinstance(query, ExpressionQuery):
        try:
            return parse_expression(query.value.expression, _make_condition)
        except ExpressionSyntaxError as exc:
            raise ItemRejection(
                CRITERIA, f"expression: {exc}", path="search_criteria.query.value.expression"
            ) from None
    return _predicates(query)


def _predicates(items: list[PredicateItem]) -> Expr:
    if not items:
        raise ItemRejection(CRITERIA, "predicate list is empty", path="search_criteria.query")
    if len(items) > MAX_PREDICATES:
        raise ItemRejection(
            CRITERIA, f"more than {MAX_PREDICATES} predicates", path="search_criteria.query"
        )
    # seq_num orders the items when given (stable for equal or missing numbers); consecutive
    # items combine with AND: the standard leaves this open (decisions.md).
    ordered = sorted(
        enumerate(items), key=lambda pair: (pair[1].seq_num is None, pair[1].seq_num or 0, pair[0])
    )
    exprs: list[Expr] = []
    for index, item in ordered:
        path = f"search_criteria.query[{index}]"
        first = _predicate(item.expression1, f"{path}.expression1")
        if item.condition is None:
            if item.expression2 is not None:
                raise ItemRejection(
                    CRITERIA, "expression2 without a condition", path=f"{path}.condition"
                )
            exprs.append(first)
            continue
        if item.condition is ExpCondition.NOT and item.expression2 is None:
            exprs.append(Not(first))
            continue
        if item.expression2 is None:
            raise ItemRejection(
                CRITERIA, f"condition {item.condition.value} needs expression2", path=path
            )
        second = _predicate(item.expression2, f"{path}.expression2")
        if item.condition is ExpCondition.AND:
            exprs.append(And((first, second)))
        elif item.condition is ExpCondition.OR:
            exprs.append(Or((first, second)))
        else:  # "e1 not e2" reads as e1 and not e2
            exprs.append(And((first, Not(second))))
    return exprs[0] if len(exprs) == 1 else And(tuple(exprs))


def _predicate(predicate: Predicate, path: str) -> Expr:
    try:
        return _make_condition(
            predicate.attribute_name, predicate.operator, predicate.attribute_value
        )
    except ItemRejection as exc:
        raise ItemRejection(exc.code, exc.message, path=path) from None


def _make_condition(name: str, op: ExpOperator, value: Any) -> Expr:
    """One comparison from an attribute spelling, operator and raw value."""
    id_type = _ID_TYPES.get(name.strip().lower())
    if id_type is not None:
        return _identifier(name, op, value, path=None)
    attribute = parse_attribute(name)
    if attribute is None or attribute is Attribute.IDENTIFIER:
        raise ItemRejection(CRITERIA, f"unknown attribute {name[:64]!r}")
    kind = ATTRIBUTE_KINDS[attribute]
    if op is ExpOperator.IN:
        values = _as_list(value)
        return Comparison(attribute, op, tuple(_convert(v, kind, name) for v in values))
    if kind is ValueKind.BOOLEAN and op is not ExpOperator.EQ:
        raise ItemRejection(CRITERIA, f"attribute {name[:64]!r} only supports eq")
    return Comparison(attribute, op, _convert(value, kind, name))


def _identifier(type_name: str, op: ExpOperator, value: Any, *, path: str | None) -> Expr:
    id_type = _ID_TYPES.get(str(type_name).strip().lower())
    if id_type is None:
        raise ItemRejection(CRITERIA, "unknown identifier type", path=path and f"{path}.type")
    if op not in _ID_OPERATORS:
        raise ItemRejection(CRITERIA, "identifiers can only be compared with eq or in", path=path)
    raw_values = _as_list(value) if op is _IN else [value]
    values: list[str] = []
    for raw in raw_values:
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise ItemRejection(
                CRITERIA, "identifier value must be a string", path=path and f"{path}.value"
            )
        text = str(raw).strip()
        if not text or len(text) > 128:
            raise ItemRejection(
                CRITERIA,
                "identifier value must be 1 to 128 characters",
                path=path and f"{path}.value",
            )
        values.append(text)
    return IdentifierLookup(canonical_identifier_type(id_type), tuple(values))


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list | tuple) or not value:
        raise ItemRejection(CRITERIA, "operator in needs a non-empty list of values")
    if len(value) > MAX_IN_VALUES:
        raise ItemRejection(CRITERIA, f"operator in takes at most {MAX_IN_VALUES} values")
    return list(value)


def _convert(value: RawValue | Any, kind: ValueKind, name: str) -> Value:
    label = name[:64]
    if kind is ValueKind.TEXT:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ItemRejection(CRITERIA, f"attribute {label!r} takes a text value")
        return str(value)
    if kind is ValueKind.INTEGER:
        if isinstance(value, bool):
            raise ItemRejection(CRITERIA, f"attribute {label!r} takes a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ItemRejection(CRITERIA, f"attribute {label!r} takes a whole number")
    if kind is ValueKind.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise ItemRejection(CRITERIA, f"attribute {label!r} takes true or false")
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise ItemRejection(CRITERIA, f"attribute {label!r} takes a date (YYYY-MM-DD)")


def _sort_key(item: SortItem, index: int) -> SortKey:
    attribute = parse_attribute(item.attribute_name)
    if attribute is None or attribute is Attribute.IDENTIFIER:
        raise ItemRejection(
            SearchStatusReasonCode.SORT_INVALID,
            "unknown sort attribute",
            path=f"search_criteria.sort[{index}].attribute_name",
        )
    return SortKey(attribute, item.sort_order)


def _page(
    pagination: PaginationRequest | None, *, default_page_size: int, max_page_size: int
) -> Page:
    if pagination is None:
        return Page(1, default_page_size)
    size, number = pagination.page_size, pagination.page_number
    if not 1 <= size <= max_page_size:
        raise ItemRejection(
            SearchStatusReasonCode.PAGINATION_INVALID,
            f"page_size must be between 1 and {max_page_size}",
            path="search_criteria.pagination.page_size",
        )
    if number < 1 or number > 1_000_000:
        raise ItemRejection(
            SearchStatusReasonCode.PAGINATION_INVALID,
            "page_number must be 1 or more",
            path="search_criteria.pagination.page_number",
        )
    return Page(number, size)
