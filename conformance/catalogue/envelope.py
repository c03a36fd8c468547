"""Envelope and schema validity of every response and callback the registry produces."""

from __future__ import annotations

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires, requires_data, requires_receiver
from conformance.context import CaseContext

G = "envelope"


@check(
    "DCI-ENV-001", "Sync search response is a schema-valid envelope", spec="§2, §2.2, §5.5", group=G
)
@requires("sync_search")
def sync_search_schema(ctx: CaseContext) -> None:
    """The body of POST /registry/sync/search is {signature?, header: MsgCallbackHeader with
    action on-search, message: SearchResponse} with the standard's types, enums and limits."""
    flow = flows.sync_search(ctx)
    expect.schema(ctx, "SyncSearchResponse", flow.body, flow.exchange, "sync search response")


@check(
    "DCI-ENV-002",
    "Sync search response header is the registry's own",
    spec="§2.1-§2.2 (message_id unique per message; receiver_id)",
    group=G,
)
@requires("sync_search")
def sync_search_header(ctx: CaseContext) -> None:
    """The response header is a callback header: action on-search, a status, a message_id of
    its own (not the request's echoed back) and, when present, receiver_id naming the tester."""
    flow = flows.sync_search(ctx)
    header = expect.field(flow.body, "header", flow.exchange, "response header", dict)
    if header.get("action") != "on-search":
        ctx.fail(
            "Wrong action",
            f"Expected 'on-search', got {header.get('action')!r} at $.header.action",
            exchange=flow.exchange,
        )
    if header.get("status") not in ("rcvd", "pdng", "succ", "rjct"):
        ctx.fail(
            "No status",
            f"Expected a status, got {header.get('status')!r} at $.header.status",
            exchange=flow.exchange,
        )
    if header.get("message_id") == flow.request["header"]["message_id"]:
        ctx.fail(
            "Echoed message_id",
            "Expected a fresh message_id, got the request's at $.header.message_id",
            severity=Severity.MEDIUM,
            exchange=flow.exchange,
        )
    receiver = header.get("receiver_id")
    if receiver is not None and receiver != ctx.config.identity.sender_id:
        ctx.fail(
            "Wrong receiver_id",
            f"Expected {ctx.config.identity.sender_id!r}, got {receiver!r} at $.header.receiver_id",
            severity=Severity.MEDIUM,
            exchange=flow.exchange,
        )


@check("DCI-ENV-003", "Sync search response correlates with its request", spec="§4", group=G)
@requires("sync_search")
def sync_search_ids(ctx: CaseContext) -> None:
    """message.transaction_id echoes the request's; correlation_id (<=99 chars) is present;
    every search_request item is answered by an item with the same reference_id."""
    flow = flows.sync_search(ctx)
    txn = expect.dig(flow.body, "message.transaction_id")
    if txn != flow.transaction_id:
        ctx.fail(
            "transaction_id not echoed",
            f"Expected {flow.transaction_id!r}, got {txn!r} at $.message.transaction_id",
            exchange=flow.exchange,
        )
    corr = expect.field(flow.body, "message.correlation_id", flow.exchange, "correlation_id", str)
    if not 0 < len(corr) <= 99:
        ctx.fail(
            "Bad correlation_id",
            f"Expected 1-99 characters, got {len(corr)} at $.message.correlation_id",
            exchange=flow.exchange,
        )
    flows.search_items(flow, flow.body, flow.exchange)


@check(
    "DCI-ENV-004",
    "Responses are application/json",
    spec="§1 (every operation: application/json)",
    group=G,
)
@requires("sync_search")
def content_type(ctx: CaseContext) -> None:
    """Sync responses and Acks carry Content-Type application/json."""
    exchanges = [flows.sync_search(ctx).exchange]
    if ctx.feature_unavailable("async_search") is None:
        exchanges.append(ctx.send("search", ctx.build.missing_id_search()))
    for ex in exchanges:
        expect.no_server_error(ex, ex.label)
        if ex.content_type.split(";")[0].strip().lower() != "application/json":
            ctx.fail(
                "Wrong Content-Type",
                f"Expected application/json, got {ex.content_type!r} in the Content-Type header",
                severity=Severity.MEDIUM,
                exchange=ex,
            )


@check("DCI-ENV-005", "Async search Ack is schema-valid", spec="§3 Ack (Response)", group=G)
@requires("async_search")
def search_ack_schema(ctx: CaseContext) -> None:
    """The Ack is {message: {ack_status, timestamp, correlation_id <= 99, error?}}, not wrapped
    in a header or signature."""
    ex = ctx.send("search", ctx.build.missing_id_search())
    body = expect.success(ex, "async search")
    expect.schema(ctx, "Ack", body, ex, "async search Ack")


@check(
    "DCI-ENV-006",
    "Subscribe, unsubscribe and txn-status Acks are schema-valid",
    spec="§3 Ack (Response)",
    group=G,
)
@requires("subscribe", "unsubscribe", "txn_status")
def other_acks_schema(ctx: CaseContext) -> None:
    """Every async endpoint answers with the same Ack shape."""
    sends = [
        ("subscribe", ctx.build.subscribe()),
        ("unsubscribe", ctx.build.unsubscribe(["conformance-unknown-code"])),
        ("txn_status", ctx.build.txn_status("search", "transaction_id", "conformance-unknown-txn")),
    ]
    for endpoint, envelope in sends:
        ex = ctx.send(endpoint, envelope)
        body = expect.success(ex, endpoint)
        expect.schema(ctx, "Ack", body, ex, f"{endpoint} Ack")


@check("DCI-ENV-007", "Sync txn status response is a schema-valid envelope", spec="§12.2", group=G)
@requires("sync_txn_status", "async_search")
@requires_receiver
def sync_txn_schema(ctx: CaseContext) -> None:
    """POST /registry/sync/txn/status answers {header: MsgCallbackHeader with action
    txn-on-status, message: TxnStatusResponse}."""
    search = flows.async_search(ctx)
    flow = flows.sync_txn(ctx, "transaction_id", search.transaction_id)
    expect.schema(
        ctx, "SyncTxnStatusResponse", flow.body, flow.exchange, "sync txn status response"
    )


def _callback_schema(ctx: CaseContext, flow: flows.Flow, name: str, what: str) -> None:
    ex = ctx.exchanges[-1] if ctx.exchanges else flow.exchange
    expect.schema(ctx, name, flow.cb.json, ex, what)


@check("DCI-ENV-008", "on-search callback is a schema-valid envelope", spec="§1, §5.5", group=G)
@requires("async_search")
@requires_receiver
def on_search_schema(ctx: CaseContext) -> None:
    """The callback to sender_uri is {signature?, header: MsgCallbackHeader with action
    on-search, message: SearchResponse}."""
    _callback_schema(ctx, flows.async_search(ctx), "OnSearchCallback", "on-search callback")


@check("DCI-ENV-009", "on-subscribe callback is a schema-valid envelope", spec="§11.2", group=G)
@requires("subscribe")
@requires_receiver
def on_subscribe_schema(ctx: CaseContext) -> None:
    """{header: MsgHeader (sic, as the spec says) with action on-subscribe, message:
    SubscribeResponse with subscription codes <= 99 characters}."""
    _callback_schema(ctx, flows.subscription(ctx), "OnSubscribeCallback", "on-subscribe callback")


@check("DCI-ENV-010", "on-unsubscribe callback is a schema-valid envelope", spec="§11.4", group=G)
@requires("subscribe", "unsubscribe")
@requires_receiver
def on_unsubscribe_schema(ctx: CaseContext) -> None:
    """{header: MsgHeader with action on-unsubscribe, message: UnSubscribeResponse}."""
    _callback_schema(
        ctx, flows.unsubscription(ctx), "OnUnsubscribeCallback", "on-unsubscribe callback"
    )


@check("DCI-ENV-011", "txn on-status callback is a schema-valid envelope", spec="§12.2", group=G)
@requires("txn_status", "async_search")
@requires_receiver
def txn_on_status_schema(ctx: CaseContext) -> None:
    """{header: MsgCallbackHeader with action txn-on-status, message: TxnStatusResponse}."""
    _callback_schema(ctx, flows.txn_async(ctx), "TxnOnStatusCallback", "txn on-status callback")


@check(
    "DCI-ENV-012",
    "Callback headers are the registry's own",
    spec="§2.1-§2.2 (message_id unique per message; receiver_id)",
    group=G,
)
@requires("async_search")
@requires_receiver
def callback_header(ctx: CaseContext) -> None:
    """A callback has its own message_id (not the request's), version 1.0.0 when given, and
    names the tester as receiver_id when it names one."""
    flow = flows.async_search(ctx)
    header = flow.cb.header
    ex = ctx.exchanges[-1]
    if header.get("message_id") == flow.request["header"]["message_id"]:
        ctx.fail(
            "Echoed message_id",
            "Expected a fresh message_id, got the request's at $.header.message_id",
            severity=Severity.MEDIUM,
            exchange=ex,
        )
    if header.get("version", "1.0.0") != "1.0.0":
        ctx.fail(
            "Wrong version",
            f"Expected '1.0.0', got {header.get('version')!r} at $.header.version",
            exchange=ex,
        )
    receiver = header.get("receiver_id")
    if receiver is not None and receiver != ctx.config.identity.sender_id:
        ctx.fail(
            "Wrong receiver_id",
            f"Expected {ctx.config.identity.sender_id!r}, got {receiver!r} at $.header.receiver_id",
            severity=Severity.MEDIUM,
            exchange=ex,
        )


@check("DCI-ENV-013", "Records are CRVS persons", spec="§7 CRVS person record", group=G)
@requires("sync_search", "query_idtype_value")
@requires_data("existing_identifier")
def records_are_persons(ctx: CaseContext) -> None:
    """reg_records is an array of objects; each record's `identifier` holds objects with
    identifier_type and identifier_value (CRVS_Person extends core Person)."""
    flow = flows.sync_search(ctx)
    items = flows.search_items(flow, flow.body, flow.exchange)
    for ref, item in items.items():
        for i, record in enumerate(
            flows.records(item, flow.exchange, f"$.message.search_response[{ref}]")
        ):
            where = f"$.message.search_response[reference_id={ref}].data.reg_records[{i}]"
            if not isinstance(record, dict):
                ctx.fail(
                    "Record not an object",
                    f"Expected an object, got {type(record).__name__} at {where}",
                    exchange=flow.exchange,
                )
            idents = record.get("identifier")
            idents = [idents] if isinstance(idents, dict) else idents
            if not isinstance(idents, list) or not all(
                isinstance(x, dict) and "identifier_type" in x and "identifier_value" in x
                for x in idents
            ):
                ctx.fail(
                    "Malformed identifier",
                    "Expected [{identifier_type, identifier_value}], got "
                    f"{str(idents)[:80]} at {where}.identifier",
                    severity=Severity.MEDIUM,
                    exchange=flow.exchange,
                )
