"""Sync search: each query type, batches, pagination and sorting (POST /registry/sync/search)."""

from __future__ import annotations

from typing import Any

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires, requires_data
from conformance.context import CaseContext

G = "search-sync"
_SEARCH_CODES = ("rjct.search_criteria.invalid", "rjct.filter.invalid")
_GENERIC_EXPRESSION = {
    "type": "ns:org:QueryType:expression",
    "value": {"expression": "birth_date >= '1900-01-01'"},
}


def _one(
    ctx: CaseContext, query_type: str, query: Any, **criteria: Any
) -> tuple[flows.Flow, dict[str, Any]]:
    envelope = ctx.build.simple_search(query_type, query, **criteria)
    flow = flows.sync_search(ctx, envelope)
    items = flows.search_items(flow, flow.body, flow.exchange)
    return flow, next(iter(items.values()))


def _identifiers(record: Any) -> list[tuple[Any, Any]]:
    idents = record.get("identifier") if isinstance(record, dict) else None
    idents = [idents] if isinstance(idents, dict) else idents or []
    return [
        (i.get("identifier_type"), i.get("identifier_value")) for i in idents if isinstance(i, dict)
    ]


@check(
    "DCI-SEARCH-001",
    "idtype-value search finds a known record",
    spec="§5.2 idtype-value, §5.5",
    group=G,
)
@requires("sync_search", "query_idtype_value")
@requires_data("existing_identifier")
def idtype_known(ctx: CaseContext) -> None:
    """Searching by the configured existing identifier answers status succ with at least one
    record carrying that identifier."""
    ident = ctx.config.data.existing_identifier
    assert ident is not None
    flow, item = _one(ctx, "idtype-value", ctx.build.idtype_query(ident))
    found = flows.records(item, flow.exchange, "$.message.search_response[0]")
    if not found:
        ctx.fail(
            "Known record not found",
            "Expected at least 1 record, got 0 at $.message.search_response[0].data.reg_records",
            exchange=flow.exchange,
        )
    if not any(str(v) == ident.value for rec in found for _, v in _identifiers(rec)):
        ctx.fail(
            "Record does not match",
            f"Expected a record with identifier value {ident.value!r}, got "
            f"{[_identifiers(r) for r in found][:3]} at "
            "$.message.search_response[0].data.reg_records",
            severity=Severity.MEDIUM,
            exchange=flow.exchange,
        )


@check(
    "DCI-SEARCH-002",
    "idtype-value search for an unknown identifier",
    spec="§5.5 (no 'not found' code: gap)",
    group=G,
)
@requires("sync_search", "query_idtype_value")
def idtype_unknown(ctx: CaseContext) -> None:
    """An identifier with no record answers succ with empty reg_records, or rjct with a
    standard search reason code; the standard has no 'not found' code, so both are accepted.
    Returning records, or a 4xx/5xx for a well-formed request, fails."""
    flow, item = _one(
        ctx, "idtype-value", ctx.build.idtype_query(ctx.config.data.missing_identifier)
    )
    if item.get("status") == "rjct":
        if item.get("status_reason_code") not in _SEARCH_CODES:
            ctx.fail(
                "Unexpected reason",
                f"Expected one of {_SEARCH_CODES}, got "
                f"{item.get('status_reason_code')!r} at "
                "$.message.search_response[0].status_reason_code",
                exchange=flow.exchange,
            )
        return
    found = flows.records(item, flow.exchange, "$.message.search_response[0]")
    if found:
        ctx.fail(
            "Records for an unknown identifier",
            f"Expected 0 records, got {len(found)} at "
            "$.message.search_response[0].data.reg_records",
            exchange=flow.exchange,
        )


@check("DCI-SEARCH-003", "expression search is answered", spec="§5.2 expression", group=G)
@requires("sync_search", "query_expression")
def expression(ctx: CaseContext) -> None:
    """With `data.expression_query` configured the search must succeed; without it a generic
    expression is sent, and succ or rjct.search_criteria.invalid are both accepted (the
    expression syntax is implementation-defined)."""
    configured = ctx.config.data.expression_query
    flow, item = _one(ctx, "expression", configured or _GENERIC_EXPRESSION)
    if configured is None and item.get("status") == "rjct":
        if item.get("status_reason_code") not in _SEARCH_CODES:
            ctx.fail(
                "Unexpected reason",
                f"Expected one of {_SEARCH_CODES}, got "
                f"{item.get('status_reason_code')!r} at "
                "$.message.search_response[0].status_reason_code",
                exchange=flow.exchange,
            )
        return
    flows.records(item, flow.exchange, "$.message.search_response[0]")


@check(
    "DCI-SEARCH-004", "predicate search is answered with records", spec="§5.2 predicate", group=G
)
@requires("sync_search", "query_predicate")
def predicate(ctx: CaseContext) -> None:
    """The configured predicate query (`data.predicate_query`) succeeds with records."""
    flow, item = _one(ctx, "predicate", ctx.config.data.predicate_query)
    if not flows.records(item, flow.exchange, "$.message.search_response[0]"):
        ctx.fail(
            "No records",
            "Expected records for the predicate query, got 0 at "
            "$.message.search_response[0].data.reg_records",
            severity=Severity.MEDIUM,
            exchange=flow.exchange,
        )


@check("DCI-SEARCH-005", "graphql search is answered", spec="§5.2 graphql (NEW)", group=G)
@requires("sync_search", "query_graphql")
@requires_data("graphql_query")
def graphql(ctx: CaseContext) -> None:
    """The configured graphql query succeeds."""
    flow, item = _one(ctx, "graphql", ctx.config.data.graphql_query)
    flows.records(item, flow.exchange, "$.message.search_response[0]")


@check(
    "DCI-SEARCH-006",
    "A batch of searches is answered item by item",
    spec="§4 batch shape, §5.5",
    group=G,
)
@requires("sync_search", "batch")
def batch(ctx: CaseContext) -> None:
    """Three search_request items get three search_response items, one per reference_id,
    each with its own status (unknown id and predicate alongside each other)."""
    b = ctx.build
    items = [
        b.search_item(
            b.criteria("idtype-value", b.idtype_query(ctx.config.data.missing_identifier))
        ),
        b.search_item(b.criteria(*flows.known_query(ctx))),
        b.search_item(b.criteria("predicate", ctx.config.data.predicate_query)),
    ]
    flow = flows.sync_search(ctx, b.search(items))
    answered = flows.search_items(flow, flow.body, flow.exchange)
    if len(expect.dig(flow.body, "message.search_response") or []) != 3:
        ctx.fail(
            "Wrong item count",
            f"Expected 3 items, got {len(answered)} at $.message.search_response",
            exchange=flow.exchange,
        )


@check(
    "DCI-SEARCH-007",
    "One bad item does not fail its neighbours",
    spec="§4 batch, §5.5 per-item status",
    group=G,
)
@requires("sync_search", "batch", "pagination")
def batch_isolation(ctx: CaseContext) -> None:
    """A batch whose second item has page_size 0 answers the first item normally and rejects
    only the second, with rjct.pagination.invalid."""
    b = ctx.build
    good = b.search_item(b.criteria(*flows.known_query(ctx)))
    bad = b.search_item(
        b.criteria(*flows.known_query(ctx), pagination={"page_size": 0, "page_number": 1})
    )
    flow = flows.sync_search(ctx, b.search([good, bad]))
    answered = flows.search_items(flow, flow.body, flow.exchange)
    if answered[good["reference_id"]].get("status") == "rjct":
        ctx.fail(
            "Neighbour rejected",
            "Expected the valid item not rejected, got status rjct "
            f"({answered[good['reference_id']].get('status_reason_code')})",
            severity=Severity.MEDIUM,
            exchange=flow.exchange,
        )
    second = answered[bad["reference_id"]]
    if (
        second.get("status") != "rjct"
        or second.get("status_reason_code") != "rjct.pagination.invalid"
    ):
        ctx.fail(
            "Bad item not rejected",
            "Expected status rjct with rjct.pagination.invalid, got "
            f"{second.get('status')!r}/{second.get('status_reason_code')!r} for reference_id "
            f"{bad['reference_id']}",
            exchange=flow.exchange,
        )


def _page(
    ctx: CaseContext, size: int, number: int, **extra: Any
) -> tuple[flows.Flow, dict[str, Any]]:
    """The predicate query (it matches several records), one page of it."""
    page = {"page_size": size, "page_number": number}
    return _one(ctx, "predicate", ctx.config.data.predicate_query, pagination=page, **extra)


def _pagination(flow: flows.Flow, item: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = expect.field(
        item,
        "pagination",
        flow.exchange,
        "response pagination ($.message.search_response[0])",
        dict,
    )
    return value


@check("DCI-SEARCH-008", "page_size is honoured and reported", spec="§5.3 pagination", group=G)
@requires("sync_search", "pagination")
def page_size(ctx: CaseContext) -> None:
    """page_size 1 returns at most one record and a pagination block {page_size: 1,
    page_number: 1, total_count}."""
    flow, item = _page(ctx, 1, 1)
    found = flows.records(item, flow.exchange, "$.message.search_response[0]")
    if len(found) > 1:
        ctx.fail(
            "page_size ignored",
            f"Expected at most 1 record, got {len(found)} at "
            "$.message.search_response[0].data.reg_records",
            exchange=flow.exchange,
        )
    page = _pagination(flow, item)
    if (
        page.get("page_size") != 1
        or page.get("page_number") != 1
        or not isinstance(page.get("total_count"), int)
    ):
        ctx.fail(
            "Wrong pagination block",
            f"Expected page_size 1, page_number 1 and a total_count, got {page} "
            "at $.message.search_response[0].pagination",
            exchange=flow.exchange,
        )


@check("DCI-SEARCH-009", "page_number selects a different page", spec="§5.3 pagination", group=G)
@requires("sync_search", "pagination")
def page_number(ctx: CaseContext) -> None:
    """With page_size 1, pages 1 and 2 return different records (skipped when the query finds
    fewer than two)."""
    flow1, item1 = _page(ctx, 1, 1)
    total = _pagination(flow1, item1).get("total_count")
    if not isinstance(total, int) or total < 2:
        ctx.skip(f"the pagination query matches {total} record(s); two are needed")
    flow2, item2 = _page(ctx, 1, 2)
    r1 = flows.records(item1, flow1.exchange, "$.message.search_response[0]")
    r2 = flows.records(item2, flow2.exchange, "$.message.search_response[0]")
    if r1 == r2:
        ctx.fail(
            "Same page twice",
            "Expected page 2 to differ from page 1, got the same records at "
            "$.message.search_response[0].data.reg_records",
            exchange=flow2.exchange,
        )
    if _pagination(flow2, item2).get("page_number") != 2:
        ctx.fail(
            "Wrong page_number",
            "Expected 2 at $.message.search_response[0].pagination.page_number, got "
            f"{_pagination(flow2, item2).get('page_number')!r}",
            exchange=flow2.exchange,
        )


@check("DCI-SEARCH-010", "A page past the end is empty", spec="§5.3 pagination", group=G)
@requires("sync_search", "pagination")
def page_past_end(ctx: CaseContext) -> None:
    """Asking for a page beyond total_count answers succ with no records, or rjct with
    rjct.pagination.invalid; never records from another page."""
    flow, item = _page(ctx, 1, 1_000_000)
    if item.get("status") == "rjct" and item.get("status_reason_code") == "rjct.pagination.invalid":
        return
    found = flows.records(item, flow.exchange, "$.message.search_response[0]")
    if found:
        ctx.fail(
            "Records past the end",
            f"Expected 0 records, got {len(found)} at "
            "$.message.search_response[0].data.reg_records",
            exchange=flow.exchange,
        )


def _sorted_case(ctx: CaseContext, order: str) -> None:
    attr = ctx.config.data.sort_attribute
    flow, item = _page(ctx, 50, 1, sort=[{"attribute_name": attr, "sort_order": order}])
    found = flows.records(item, flow.exchange, "$.message.search_response[0]")
    values = [r.get(attr) for r in found if isinstance(r, dict)]
    values = [v for v in values if v is not None]
    if len(values) < 2:
        ctx.skip(f"fewer than two records carry `{attr}`; cannot judge the order")
    wanted = sorted(values, reverse=order == "desc", key=str)
    if [str(v) for v in values] != [str(v) for v in wanted]:
        ctx.fail(
            "Not sorted",
            f"Expected {attr} {order}, got {values[:6]} at "
            "$.message.search_response[0].data.reg_records[*]",
            exchange=flow.exchange,
        )


@check("DCI-SEARCH-011", "Sort ascending is honoured", spec="§5.3 sort", group=G)
@requires("sync_search", "sorting")
def sort_asc(ctx: CaseContext) -> None:
    """sort [{attribute_name: data.sort_attribute, sort_order: asc}] orders the records."""
    _sorted_case(ctx, "asc")


@check("DCI-SEARCH-012", "Sort descending is honoured", spec="§5.3 sort", group=G)
@requires("sync_search", "sorting")
def sort_desc(ctx: CaseContext) -> None:
    """sort_order desc orders the records the other way."""
    _sorted_case(ctx, "desc")


def _invalid(ctx: CaseContext, what: str, item_codes: tuple[str, ...], **criteria: Any) -> None:
    envelope = ctx.build.simple_search(*flows.known_query(ctx), **criteria)
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, what, item_codes=item_codes)


@check(
    "DCI-SEARCH-013", "page_size 0 is rejected", spec="§5.3; §5.5 rjct.pagination.invalid", group=G
)
@requires("sync_search", "pagination")
def page_size_zero(ctx: CaseContext) -> None:
    """page_size 0: item status rjct with rjct.pagination.invalid, or err.request.bad."""
    _invalid(
        ctx,
        "page_size 0",
        ("rjct.pagination.invalid",),
        pagination={"page_size": 0, "page_number": 1},
    )


@check("DCI-SEARCH-014", "page_number 0 is rejected", spec="§5.3 (pages start at 1)", group=G)
@requires("sync_search", "pagination")
def page_number_zero(ctx: CaseContext) -> None:
    """page_number 0: item status rjct with rjct.pagination.invalid, or err.request.bad."""
    _invalid(
        ctx,
        "page_number 0",
        ("rjct.pagination.invalid",),
        pagination={"page_size": 10, "page_number": 0},
    )


@check(
    "DCI-SEARCH-015",
    "Negative page_size is rejected",
    spec="§5.3; §5.5 rjct.pagination.invalid",
    group=G,
)
@requires("sync_search", "pagination")
def page_size_negative(ctx: CaseContext) -> None:
    """page_size -1: item status rjct with rjct.pagination.invalid, or err.request.bad."""
    _invalid(
        ctx,
        "page_size -1",
        ("rjct.pagination.invalid",),
        pagination={"page_size": -1, "page_number": 1},
    )


@check(
    "DCI-SEARCH-016",
    "An invalid sort order is rejected",
    spec="§5.3 sort; rjct.sort.invalid",
    group=G,
)
@requires("sync_search", "sorting")
def sort_invalid(ctx: CaseContext) -> None:
    """sort_order 'sideways' (not asc/desc): rjct.sort.invalid on the item, or err.request.bad."""
    attr = ctx.config.data.sort_attribute
    _invalid(
        ctx,
        "invalid sort",
        ("rjct.sort.invalid",),
        sort=[{"attribute_name": attr, "sort_order": "sideways"}],
    )


@check(
    "DCI-SEARCH-017",
    "Duplicate reference_ids in a batch are rejected",
    spec="§4; rjct.reference_id.duplicate",
    group=G,
)
@requires("sync_search", "batch")
def duplicate_reference(ctx: CaseContext) -> None:
    """Two items sharing a reference_id: rjct.reference_id.duplicate on an item, or
    err.request.bad for the message."""
    b = ctx.build
    first = b.search_item(b.criteria(*flows.known_query(ctx)), reference_id="conformance-dup-ref")
    second = b.search_item(b.criteria(*flows.known_query(ctx)), reference_id="conformance-dup-ref")
    ex = ctx.send("sync_search", b.search([first, second]))
    expect.no_server_error(ex, "duplicate reference_id")
    items = expect.dig(ex.response_json, "message.search_response")
    if isinstance(items, list) and any(
        isinstance(i, dict) and i.get("status_reason_code") == "rjct.reference_id.duplicate"
        for i in items
    ):
        return
    expect.rejected(ctx, ex, "duplicate reference_id", item_codes=("rjct.reference_id.duplicate",))


@check("DCI-SEARCH-018", "An unknown query_type is rejected", spec="§5.2 query_type enum", group=G)
@requires("sync_search")
def unknown_query_type(ctx: CaseContext) -> None:
    """query_type 'sql' is outside the enum: err.request.bad, or the item rejected with
    rjct.search_criteria.invalid."""
    envelope = ctx.build.simple_search("sql", {"type": "sql", "value": "select 1"})
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, "unknown query_type", item_codes=("rjct.search_criteria.invalid",))


@check(
    "DCI-SEARCH-019",
    "Negative page_number is rejected",
    spec="§5.3 (pages start at 1); §5.5 rjct.pagination.invalid",
    group=G,
)
@requires("sync_search", "pagination")
def page_number_negative(ctx: CaseContext) -> None:
    """page_number -1: item status rjct with rjct.pagination.invalid, or err.request.bad."""
    _invalid(
        ctx,
        "page_number -1",
        ("rjct.pagination.invalid",),
        pagination={"page_size": 10, "page_number": -1},
    )
