"""Transaction status, sync and async (POST /registry/sync/txn/status, /registry/txn/status)."""

from __future__ import annotations

from typing import Any

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires, requires_receiver
from conformance.context import CaseContext

G = "txn"
_TXN_TYPES = {"search": ("search", "on-search"), "subscribe": ("subscribe", "on-subscribe")}


def _status_of(
    ctx: CaseContext, flow: flows.Flow, body: Any, txn_type: str, ex: Any
) -> dict[str, Any]:
    got_type = expect.field(body, "message.txnstatus_response.txn_type", ex, "txn_type", str)
    if got_type not in _TXN_TYPES[txn_type]:
        ctx.fail(
            "Wrong txn_type",
            f"Expected {txn_type!r}, got {got_type!r} at $.message.txnstatus_response.txn_type",
            exchange=ex,
        )
    status: dict[str, Any] = expect.field(
        body, "message.txnstatus_response.txn_status", ex, "txn_status", dict
    )
    return status


def _about_search(ctx: CaseContext, search: flows.Flow, body: Any, ex: Any) -> None:
    status = _status_of(ctx, search, body, "search", ex)
    inner = status.get("transaction_id")
    if inner != search.transaction_id:
        ctx.fail(
            "Status of another transaction",
            f"Expected {search.transaction_id!r}, got {inner!r} at "
            "$.message.txnstatus_response.txn_status.transaction_id",
            exchange=ex,
        )
    expect.field(
        status,
        "search_response",
        ex,
        "embedded SearchResponse ($.message.txnstatus_response.txn_status)",
        list,
    )


@check("DCI-TXN-001", "Sync txn status reports a finished search", spec="§12.1, §12.2", group=G)
@requires("sync_txn_status", "async_search")
@requires_receiver
def sync_by_transaction(ctx: CaseContext) -> None:
    """After an async search completed, txn status by transaction_id (txn_type search)
    returns the original SearchResponse (same transaction_id) under txnstatus_response."""
    search = flows.async_search(ctx)
    flow = flows.sync_txn(ctx, "transaction_id", search.transaction_id)
    _about_search(ctx, search, flow.body, flow.exchange)


@check(
    "DCI-TXN-002", "Async txn status is acknowledged", spec="§1 /registry/txn/status, §3", group=G
)
@requires("txn_status")
def async_ack(ctx: CaseContext) -> None:
    """A txn status request to the async endpoint answers HTTP 200/202 with ACK."""
    envelope = ctx.build.txn_status("search", "transaction_id", "conformance-txn-unknown")
    expect.ack(ctx.send("txn_status", envelope), "async txn status")


@check(
    "DCI-TXN-003", "txn on-status callback carries the ids", spec="§1 async flow, §12.2", group=G
)
@requires("txn_status", "async_search")
@requires_receiver
def async_callback(ctx: CaseContext) -> None:
    """The txn on-status callback carries the txn request's transaction_id, the Ack's
    correlation_id, and the searched transaction's SearchResponse."""
    flow = flows.txn_async(ctx)
    ex = ctx.exchanges[-1]
    if flow.cb.message.get("transaction_id") != flow.transaction_id:
        ctx.fail(
            "Wrong transaction_id",
            f"Expected {flow.transaction_id!r}, got "
            f"{flow.cb.message.get('transaction_id')!r} at $.message.transaction_id",
            exchange=ex,
        )
    if flow.cb.message.get("correlation_id") != flow.correlation_id:
        ctx.fail(
            "Wrong correlation_id",
            f"Expected the Ack's {flow.correlation_id!r}, got "
            f"{flow.cb.message.get('correlation_id')!r} at $.message.correlation_id",
            exchange=ex,
        )
    _about_search(ctx, flows.async_search(ctx), flow.cb.json, ex)


@check(
    "DCI-TXN-004",
    "Txn status by correlation_id",
    spec="§12.1 attribute_type correlation_id",
    group=G,
)
@requires("sync_txn_status", "async_search")
@requires_receiver
def by_correlation(ctx: CaseContext) -> None:
    """attribute_type correlation_id with the Ack's correlation_id finds the same transaction."""
    search = flows.async_search(ctx)
    flow = flows.sync_txn(ctx, "correlation_id", search.correlation_id)
    _about_search(ctx, search, flow.body, flow.exchange)


@check(
    "DCI-TXN-005",
    "Txn status by reference_id_list",
    spec="§12.1 attribute_type reference_id_list",
    group=G,
)
@requires("sync_txn_status", "async_search")
@requires_receiver
def by_reference_ids(ctx: CaseContext) -> None:
    """attribute_type reference_id_list with the search's reference_ids reports those items."""
    search = flows.async_search(ctx)
    refs = [i["reference_id"] for i in search.request["message"]["search_request"]]
    flow = flows.sync_txn(ctx, "reference_id_list", refs)
    status = _status_of(ctx, search, flow.body, "search", flow.exchange)
    got = [
        i.get("reference_id") for i in status.get("search_response") or [] if isinstance(i, dict)
    ]
    if not set(refs) <= set(got):
        ctx.fail(
            "Items missing",
            f"Expected items for {refs}, got {got} at "
            "$.message.txnstatus_response.txn_status.search_response[*].reference_id",
            exchange=flow.exchange,
        )


@check(
    "DCI-TXN-006",
    "Txn status of an unknown transaction",
    spec="§12 (no txn reason codes: gap)",
    group=G,
)
@requires("sync_txn_status")
def unknown(ctx: CaseContext) -> None:
    """An unknown transaction_id is not reported as a successful search: accepted are a
    header status rjct, embedded items with status rjct, or err.request.not_found /
    err.request.bad (the standard defines no txn-specific code)."""
    envelope = ctx.build.txn_status("search", "transaction_id", "conformance-no-such-transaction")
    ex = ctx.send("sync_txn_status", envelope)
    expect.no_server_error(ex, "txn status")
    body = ex.response_json
    if expect.dig(body, "header.status") == "rjct":
        return
    items = expect.dig(body, "message.txnstatus_response.txn_status.search_response")
    if (
        isinstance(items, list)
        and items
        and all(isinstance(i, dict) and i.get("status") == "rjct" for i in items)
    ):
        return
    if (
        isinstance(items, list)
        and not items
        and expect.dig(body, "message.txnstatus_response") is not None
    ):
        return
    expect.rejected(
        ctx, ex, "unknown transaction", codes=("err.request.not_found", "err.request.bad")
    )


@check("DCI-TXN-007", "Txn status reports a subscription", spec="§12.1 txn_type subscribe", group=G)
@requires("sync_txn_status", "subscribe")
@requires_receiver
def subscription(ctx: CaseContext) -> None:
    """txn_type subscribe by transaction_id returns the SubscribeResponse with its codes."""
    sub = flows.subscription(ctx)
    codes = flows.subscription_codes(ctx, sub)
    flow = flows.sync_txn(ctx, "transaction_id", sub.transaction_id, txn_type="subscribe")
    status = _status_of(ctx, sub, flow.body, "subscribe", flow.exchange)
    got = [
        s.get("code")
        for item in status.get("subscribe_response") or []
        if isinstance(item, dict)
        for s in item.get("subscriptions") or []
        if isinstance(s, dict)
    ]
    if not set(codes) <= set(got):
        ctx.fail(
            "Subscription not reported",
            f"Expected codes {codes}, got {got} at "
            "$.message.txnstatus_response.txn_status.subscribe_response[*].subscriptions[*].code",
            severity=Severity.MEDIUM,
            exchange=flow.exchange,
        )
