"""Multi-step exchanges several cases build on, computed once per run and shared.

A shared flow that failed is remembered as failed, so the cases depending on it report the
same evidence instead of each waiting out the callback timeout again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance import expect
from conformance.checks import Failure
from conformance.context import CaseContext
from conformance.evidence import Exchange
from conformance.receiver import Callback

Json = dict[str, Any]

# endpoint -> (feature, builder of a valid request to it)
VALID_REQUESTS: dict[str, tuple[str, Callable[[CaseContext], Json]]] = {
    "search": ("async_search", lambda c: c.build.missing_id_search()),
    "sync_search": ("sync_search", lambda c: c.build.missing_id_search()),
    "subscribe": ("subscribe", lambda c: c.build.subscribe()),
    "unsubscribe": ("unsubscribe", lambda c: c.build.unsubscribe(["conformance-unknown-code"])),
    "txn_status": (
        "txn_status",
        lambda c: c.build.txn_status("search", "transaction_id", "conformance-x"),
    ),
    "sync_txn_status": (
        "sync_txn_status",
        lambda c: c.build.txn_status("search", "transaction_id", "conformance-x"),
    ),
}


@dataclass
class Flow:
    """A request, its Ack or response, and (async) the callback that followed."""

    request: Json
    exchange: Exchange
    body: Json
    callback: Callback | None = None
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def transaction_id(self) -> str:
        return str(self.request["message"]["transaction_id"])

    @property
    def correlation_id(self) -> str | None:
        value = expect.dig(self.body, "message.correlation_id")
        return value if isinstance(value, str) else None

    @property
    def cb(self) -> Callback:
        assert self.callback is not None
        return self.callback


def shared_flow(ctx: CaseContext, key: str, make: Callable[[], Flow]) -> Flow:
    """Run `make` once per run; later cases reuse its result (or its failure)."""

    def guarded() -> Flow | Failure:
        try:
            return make()
        except Failure as exc:
            return exc

    before = len(ctx.exchanges)
    outcome = ctx.shared(key, guarded)
    if len(ctx.exchanges) == before and isinstance(outcome, Flow):
        ctx.exchanges.extend(outcome.exchanges)
    if isinstance(outcome, Failure):
        raise outcome
    return outcome


def known_query(ctx: CaseContext) -> tuple[str, Any]:
    """A query expected to find records: the known identifier, else the predicate query."""
    ident = ctx.config.data.existing_identifier
    if ident is not None:
        return "idtype-value", ctx.build.idtype_query(ident)
    return "predicate", ctx.config.data.predicate_query


def sync_search(ctx: CaseContext, envelope: Json | None = None) -> Flow:
    if envelope is None:
        envelope = ctx.build.simple_search(*known_query(ctx))
    exchange = ctx.send("sync_search", envelope)
    body = expect.success(exchange, "sync search", allowed=(200,))
    return Flow(envelope, exchange, body, exchanges=[exchange])


def async_flow(
    ctx: CaseContext,
    endpoint: str,
    envelope: Json,
    action: str,
    *,
    ack_statuses: tuple[str, ...] = ("ACK",),
) -> Flow:
    """Send to an async endpoint, expect an Ack, wait for the `action` callback."""
    start = len(ctx.exchanges)
    exchange = ctx.send(endpoint, envelope)
    ack = expect.ack(exchange, endpoint.replace("_", " "), statuses=ack_statuses)
    flow = Flow(envelope, exchange, {"message": ack})
    if ack.get("ack_status") == "ACK":
        flow.callback = expect.callback_for(ctx, exchange, action, f"the {action} callback")
    flow.exchanges = ctx.exchanges[start:]
    return flow


def async_search(ctx: CaseContext) -> Flow:
    """The run's reference async search (known query), with its on-search callback."""
    return shared_flow(
        ctx,
        "async-search",
        lambda: async_flow(ctx, "search", ctx.build.simple_search(*known_query(ctx)), "on-search"),
    )


def subscription(ctx: CaseContext) -> Flow:
    """The run's reference subscription, with its on-subscribe callback."""
    return shared_flow(
        ctx,
        "subscription",
        lambda: async_flow(ctx, "subscribe", ctx.build.subscribe(), "on-subscribe"),
    )


def subscription_codes(ctx: CaseContext, flow: Flow) -> list[str]:
    """The codes of an on-subscribe callback; fails when there are none."""
    items = expect.field(
        flow.cb.json, "message.subscribe_response", flow.exchanges[-1], "on-subscribe items", list
    )
    codes = [
        s.get("code")
        for item in items
        if isinstance(item, dict)
        for s in (item.get("subscriptions") or [])
        if isinstance(s, dict)
    ]
    found = [c for c in codes if isinstance(c, str) and c]
    if not found:
        ctx.fail(
            "No subscription code",
            "Expected subscription codes, got none at "
            "$.message.subscribe_response[*].subscriptions[*].code",
            exchange=flow.exchanges[-1],
        )
    return found


def unsubscription(ctx: CaseContext) -> Flow:
    """Unsubscribe the reference subscription (own subscription, so notify cases keep theirs)."""

    def make() -> Flow:
        sub = async_flow(ctx, "subscribe", ctx.build.subscribe(), "on-subscribe")
        codes = subscription_codes(ctx, sub)
        flow = async_flow(
            ctx,
            "unsubscribe",
            ctx.build.unsubscribe(codes),
            "on-unsubscribe",
            ack_statuses=("ACK",),
        )
        flow.exchanges = sub.exchanges + flow.exchanges
        return flow

    return shared_flow(ctx, "unsubscription", make)


def txn_async(ctx: CaseContext) -> Flow:
    """An async txn status request about the reference async search."""

    def make() -> Flow:
        search = async_search(ctx)
        envelope = ctx.build.txn_status("search", "transaction_id", search.transaction_id)
        flow = async_flow(ctx, "txn_status", envelope, "txn-on-status")
        flow.exchanges = search.exchanges + flow.exchanges
        return flow

    return shared_flow(ctx, "txn-async", make)


def sync_txn(ctx: CaseContext, attribute_type: str, value: Any, txn_type: str = "search") -> Flow:
    envelope = ctx.build.txn_status(txn_type, attribute_type, value)
    exchange = ctx.send("sync_txn_status", envelope)
    body = expect.success(exchange, "sync txn status", allowed=(200,))
    return Flow(envelope, exchange, body, exchanges=[exchange])


def search_items(flow: Flow, body: Any, exchange: Exchange) -> dict[str, Json]:
    """Response items by reference_id; every request item must be answered exactly once."""
    items = expect.field(body, "message.search_response", exchange, "search response items", list)
    by_ref: dict[str, Json] = {}
    for i, item in enumerate(items):
        ref = expect.dig(item, "reference_id")
        if not isinstance(ref, str):
            raise Failure(
                "Response item without reference_id",
                f"Expected a reference_id, got {ref!r} at "
                f"$.message.search_response[{i}].reference_id",
                exchange=exchange,
            )
        by_ref[ref] = item
    sent = [it["reference_id"] for it in flow.request["message"]["search_request"]]
    missing = [r for r in sent if r not in by_ref]
    if missing:
        raise Failure(
            "Request items not answered",
            f"Expected a response item per reference_id {sent}, got none for {missing} "
            "at $.message.search_response[*].reference_id",
            exchange=exchange,
        )
    return by_ref


def records(item: Json, exchange: Exchange, where: str) -> list[Any]:
    status = item.get("status")
    if status != "succ":
        raise Failure(
            "Search not successful",
            f"Expected status succ, got {status!r} ({item.get('status_reason_code')}) "
            f"at {where}.status",
            exchange=exchange,
        )
    found = expect.dig(item, "data.reg_records")
    if not isinstance(found, list):
        raise Failure(
            "No records array",
            f"Expected an array, got {type(found).__name__} at {where}.data.reg_records",
            exchange=exchange,
        )
    return found
