"""Search: `SearchRequest` (action `search`) and `SearchResponse` (action `on-search`).

`search_criteria.query` stays untyped on decode and is read by `codec.decode_query` once the
item's `query_type` is known: a query that does not fit its type is a per-item rejection
(`rjct.search_criteria.invalid`), never a failure of the whole message. Pagination bounds are
checked by the use case for the same reason.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from dci_bridge.protocol.codes import (
    ExpCondition,
    ExpOperator,
    QueryType,
    RequestStatus,
    SearchStatusReasonCode,
    SortOrder,
)
from dci_bridge.protocol.header import Version, version_default
from dci_bridge.protocol.primitives import (
    CorrelationId,
    DateTime,
    Locale,
    ReferenceId,
    StatusReasonMessage,
    TransactionId,
)

QUERY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"$ref": "#/$defs/ExpressionQuery"},
        {"$ref": "#/$defs/IdTypeValueQuery"},
        {"type": "array", "items": {"$ref": "#/$defs/PredicateItem"}},
    ]
}
"""The standard's three query shapes (RegistryQueries), for the exported JSON Schema."""

Query = Annotated[
    Any,
    Meta(
        description="Shape given by query_type; see codec.decode_query",
        extra_json_schema=QUERY_SCHEMA,
    ),
]
JsonObject = Annotated[Any, Meta(extra_json_schema={"type": "object"})]
AttributeValue = str | int | float | bool | dict[str, Any]


class IdTypeValueQuery(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """`idtype-value` query (IdentifierTypeValue): an identifier type such as `UIN` and a value."""

    type: str
    value: AttributeValue


class ExpressionValue(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Query expression text (QueryExpression)."""

    expression: str


class ExpressionQuery(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """`expression` or `graphql` query (ExpTemplate): a typed expression template."""

    type: str
    value: ExpressionValue


class Predicate(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One comparison (ExpPredicate): `attribute_name operator attribute_value`."""

    attribute_name: str
    operator: ExpOperator
    attribute_value: Any


class PredicateItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One entry of a `predicate` query (ExpPredicateWithCondition)."""

    seq_num: int | float | None = None
    expression1: Predicate
    condition: ExpCondition | None = None
    expression2: Predicate | None = None


def _ascending() -> SortOrder:
    return SortOrder.ASC


def _first_page() -> int:
    return 1


class SortItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Sorting definition (SearchSort); a missing `sort_order` reads as `asc`."""

    attribute_name: str
    sort_order: SortOrder = msgspec.field(default_factory=_ascending)


class PaginationRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Requested page (PaginationRequest); pages count from 1. Bounds: see module docstring."""

    page_size: int
    page_number: Annotated[int, Meta(extra_json_schema={"default": 1})] = msgspec.field(
        default_factory=_first_page
    )


class Pagination(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Page returned (Pagination), with the total number of matches."""

    page_size: int
    page_number: int
    total_count: int


class SearchCriteria(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """What to search for. `reg_event_type` is the DRAFT/V1 field NEW replaced by
    `reg_record_type`; both are read."""

    version: Version = msgspec.field(default_factory=version_default)
    reg_type: str | None = None
    reg_record_type: str | None = None
    reg_event_type: str | None = None
    query_type: QueryType
    query: Query
    sort: list[SortItem] | None = None
    pagination: PaginationRequest | None = None
    consent: JsonObject = None
    authorize: JsonObject = None


class SearchRequestItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One search of a batch. `pagination` here is a tolerated misplacement (docs/decisions.md):
    the standard puts it in `search_criteria`, which wins when both are given."""

    reference_id: ReferenceId
    timestamp: DateTime
    locale: Locale | None = None
    search_criteria: SearchCriteria
    pagination: PaginationRequest | None = None


class SearchRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of a `search` request: a batch of searches."""

    transaction_id: TransactionId
    search_request: list[SearchRequestItem]


class SearchResponseData(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Records found. `reg_records` is an array (NEW); a single object (DRAFT/V1 typing) is
    read as a one-element array, so readers always see a list."""

    version: Version = msgspec.field(default_factory=version_default)
    reg_type: str | None = None
    reg_record_type: str | None = None
    reg_event_type: str | None = None
    reg_records: list[Any] | dict[str, Any]

    def __post_init__(self) -> None:
        if isinstance(self.reg_records, dict):
            msgspec.structs.force_setattr(self, "reg_records", [self.reg_records])


class SearchResponseItem(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Answer to one search item, echoing its `reference_id` with its own status."""

    reference_id: ReferenceId
    timestamp: DateTime
    status: RequestStatus
    status_reason_code: SearchStatusReasonCode | None = None
    status_reason_message: StatusReasonMessage | None = None
    data: SearchResponseData | None = None
    pagination: Pagination | None = None
    locale: Locale | None = None


class SearchResponse(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Message of an `on-search` callback or a sync search answer."""

    transaction_id: TransactionId
    correlation_id: CorrelationId
    search_response: list[SearchResponseItem]
