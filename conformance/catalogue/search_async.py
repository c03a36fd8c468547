"""Async search: Ack, the on-search callback to sender_uri, per query type, pagination bounds."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires, requires_data, requires_receiver
from conformance.context import CaseContext

G = "search-async"


@check("DCI-ASYNC-001", "Async search is acknowledged", spec="§1 /registry/search, §3 Ack", group=G)
@requires("async_search")
def acknowledged(ctx: CaseContext) -> None:
    """A valid search to /registry/search answers HTTP 200/202 with ack_status ACK and a
    correlation_id."""
    ex = ctx.send("search", ctx.build.simple_search(*flows.known_query(ctx)))
    expect.ack(ex, "async search")


@check(
    "DCI-ASYNC-002",
    "on-search callback carries the transaction and correlation ids",
    spec="§1 async flow, §4",
    group=G,
)
@requires("async_search")
@requires_receiver
def callback_ids(ctx: CaseContext) -> None:
    """The on-search callback arrives at sender_uri with the request's transaction_id and
    the correlation_id the Ack announced."""
    flow = flows.async_search(ctx)
    ex = ctx.exchanges[-1]
    got_txn = flow.cb.message.get("transaction_id")
    if got_txn != flow.transaction_id:
        ctx.fail(
            "Wrong transaction_id",
            f"Expected {flow.transaction_id!r}, got {got_txn!r} at $.message.transaction_id",
            exchange=ex,
        )
    got_corr = flow.cb.message.get("correlation_id")
    if got_corr != flow.correlation_id:
        ctx.fail(
            "Wrong correlation_id",
            f"Expected the Ack's {flow.correlation_id!r}, got {got_corr!r} at "
            "$.message.correlation_id",
            exchange=ex,
        )


@check(
    "DCI-ASYNC-003", "on-search callback answers every request item", spec="§4 batch, §5.5", group=G
)
@requires("async_search")
@requires_receiver
def callback_items(ctx: CaseContext) -> None:
    """Each search_request reference_id is answered by a search_response item with a status."""
    flow = flows.async_search(ctx)
    flows.search_items(flow, flow.cb.json, ctx.exchanges[-1])


def _async_query(
    ctx: CaseContext, query_type: str, query: Any
) -> tuple[flows.Flow, dict[str, Any]]:
    flow = flows.async_flow(ctx, "search", ctx.build.simple_search(query_type, query), "on-search")
    items = flows.search_items(flow, flow.cb.json, ctx.exchanges[-1])
    return flow, next(iter(items.values()))


@check(
    "DCI-ASYNC-004",
    "Async idtype-value search finds a known record",
    spec="§5.2 idtype-value",
    group=G,
)
@requires("async_search", "query_idtype_value")
@requires_data("existing_identifier")
@requires_receiver
def idtype(ctx: CaseContext) -> None:
    """The on-search callback for the known identifier has status succ and records."""
    ident = ctx.config.data.existing_identifier
    assert ident is not None
    _flow, item = _async_query(ctx, "idtype-value", ctx.build.idtype_query(ident))
    if not flows.records(item, ctx.exchanges[-1], "$.message.search_response[0]"):
        ctx.fail(
            "Known record not found",
            "Expected at least 1 record, got 0 at $.message.search_response[0].data.reg_records",
            exchange=ctx.exchanges[-1],
        )


@check("DCI-ASYNC-005", "Async expression search is answered", spec="§5.2 expression", group=G)
@requires("async_search", "query_expression")
@requires_receiver
def expression(ctx: CaseContext) -> None:
    """ACK then an on-search callback; with `data.expression_query` unset a generic
    expression is sent and rjct.search_criteria.invalid is accepted (syntax is
    implementation-defined)."""
    configured = ctx.config.data.expression_query
    query = configured or {
        "type": "ns:org:QueryType:expression",
        "value": {"expression": "birth_date >= '1900-01-01'"},
    }
    _flow, item = _async_query(ctx, "expression", query)
    if configured is None and item.get("status") == "rjct":
        if item.get("status_reason_code") != "rjct.search_criteria.invalid":
            ctx.fail(
                "Unexpected reason",
                f"Expected rjct.search_criteria.invalid, got "
                f"{item.get('status_reason_code')!r} at "
                "$.message.search_response[0].status_reason_code",
                exchange=ctx.exchanges[-1],
            )
        return
    flows.records(item, ctx.exchanges[-1], "$.message.search_response[0]")


@check(
    "DCI-ASYNC-006",
    "Async predicate search is answered with records",
    spec="§5.2 predicate",
    group=G,
)
@requires("async_search", "query_predicate")
@requires_receiver
def predicate(ctx: CaseContext) -> None:
    """ACK then an on-search callback with status succ for the configured predicate query."""
    _flow, item = _async_query(ctx, "predicate", ctx.config.data.predicate_query)
    flows.records(item, ctx.exchanges[-1], "$.message.search_response[0]")


def _bad_page(ctx: CaseContext, size: int, number: int) -> None:
    pagination = {"page_size": size, "page_number": number}
    envelope = ctx.build.simple_search(*flows.known_query(ctx), pagination=pagination)
    ex = ctx.send("search", envelope)
    expect.rejected(
        ctx,
        ex,
        f"async search with {pagination}",
        item_codes=("rjct.pagination.invalid",),
        callback_action="on-search",
    )


@check(
    "DCI-ASYNC-007",
    "Async search with page_size 0 is rejected",
    spec="§5.3; rjct.pagination.invalid",
    group=G,
)
@requires("async_search", "pagination")
def page_size_zero(ctx: CaseContext) -> None:
    """ERR Ack with err.request.bad, or ACK and an on-search item rjct.pagination.invalid."""
    _bad_page(ctx, 0, 1)


@check(
    "DCI-ASYNC-008",
    "Async search with page_number 0 is rejected",
    spec="§5.3 (pages start at 1)",
    group=G,
)
@requires("async_search", "pagination")
def page_number_zero(ctx: CaseContext) -> None:
    """ERR Ack with err.request.bad, or ACK and an on-search item rjct.pagination.invalid."""
    _bad_page(ctx, 10, 0)


@check("DCI-ASYNC-009", "Async search with negative page_size is rejected", spec="§5.3", group=G)
@requires("async_search", "pagination")
def page_size_negative(ctx: CaseContext) -> None:
    """ERR Ack with err.request.bad, or ACK and an on-search item rjct.pagination.invalid."""
    _bad_page(ctx, -1, 1)


@check("DCI-ASYNC-010", "Async search with valid pagination is acknowledged", spec="§5.3", group=G)
@requires("async_search", "pagination")
def pagination_accepted(ctx: CaseContext) -> None:
    """page_size 10 with page_number 1 and with page_number 2 are both acknowledged (ACK)."""
    for number in (1, 2):
        envelope = ctx.build.simple_search(
            *flows.known_query(ctx), pagination={"page_size": 10, "page_number": number}
        )
        expect.ack(ctx.send("search", envelope), f"async search page {number}")


@check(
    "DCI-ASYNC-011",
    "The callback goes to sender_uri",
    spec="§1 (sender_uri: callback URL); §2.1",
    group=G,
)
@requires("async_search")
@requires_receiver
def callback_path(ctx: CaseContext) -> None:
    """With sender_uri_mode `exact` the callback is POSTed to the exact sender_uri path (the
    spec's example is a full callback URL); with `base` to a path under it."""
    flow = flows.async_search(ctx)
    sent = urlsplit(str(flow.request["header"].get("sender_uri", ""))).path
    got = flow.cb.path
    exact = ctx.config.receiver.sender_uri_mode == "exact"
    if (exact and got != sent) or (not exact and not got.startswith(sent.rstrip("/"))):
        ctx.fail(
            "Callback to another path",
            f"Expected a POST to {sent!r}, got one to {got!r}",
            severity=Severity.MEDIUM,
            exchange=ctx.exchanges[-1],
        )


@check("DCI-ASYNC-012", "Async graphql search is answered", spec="§5.2 graphql (NEW)", group=G)
@requires("async_search", "query_graphql")
@requires_data("graphql_query")
@requires_receiver
def graphql(ctx: CaseContext) -> None:
    """ACK then an on-search callback with status succ for the configured graphql query."""
    _flow, item = _async_query(ctx, "graphql", ctx.config.data.graphql_query)
    flows.records(item, ctx.exchanges[-1], "$.message.search_response[0]")


@check(
    "DCI-ASYNC-013",
    "Async search with negative page_number is rejected",
    spec="§5.3 (pages start at 1)",
    group=G,
)
@requires("async_search", "pagination")
def page_number_negative(ctx: CaseContext) -> None:
    """ERR Ack with err.request.bad, or ACK and an on-search item rjct.pagination.invalid."""
    _bad_page(ctx, 10, -1)
