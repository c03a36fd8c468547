"""Subscribe and unsubscribe (POST /registry/subscribe, /registry/unsubscribe) and callbacks."""

from __future__ import annotations

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires, requires_receiver
from conformance.context import CaseContext

G = "subscribe"
_UNSUB_CODES = ("rjct.subscription_code.invalid",)


@check("DCI-SUB-001", "Subscribe is acknowledged", spec="§1 /registry/subscribe, §3", group=G)
@requires("subscribe")
def acknowledged(ctx: CaseContext) -> None:
    """A valid subscribe request answers HTTP 200/202 with ack_status ACK."""
    expect.ack(ctx.send("subscribe", ctx.build.subscribe()), "subscribe")


@check("DCI-SUB-002", "on-subscribe callback returns subscription codes", spec="§11.2", group=G)
@requires("subscribe")
@requires_receiver
def on_subscribe(ctx: CaseContext) -> None:
    """The on-subscribe callback carries the request's transaction_id, the Ack's
    correlation_id, status succ and subscriptions with a code of 1-99 characters and status
    subscribe."""
    flow = flows.subscription(ctx)
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
    for code in flows.subscription_codes(ctx, flow):
        if len(code) > 99:
            ctx.fail(
                "Code too long",
                f"Expected <= 99 characters, got {len(code)} at "
                "$.message.subscribe_response[*].subscriptions[*].code",
                exchange=ex,
            )
    items = flow.cb.message.get("subscribe_response") or []
    bad = [i.get("status") for i in items if isinstance(i, dict) and i.get("status") != "succ"]
    if bad:
        ctx.fail(
            "Subscription not successful",
            f"Expected status succ, got {bad} at $.message.subscribe_response[*].status",
            exchange=ex,
        )


@check("DCI-SUB-003", "Unsubscribe is acknowledged", spec="§1 /registry/unsubscribe, §3", group=G)
@requires("unsubscribe")
def unsubscribe_ack(ctx: CaseContext) -> None:
    """Unsubscribe answers HTTP 200/202 with ack_status ACK or NACK."""
    ex = ctx.send("unsubscribe", ctx.build.unsubscribe(["conformance-unknown-code"]))
    expect.ack(ex, "unsubscribe", statuses=("ACK", "NACK"))


@check("DCI-SUB-004", "on-unsubscribe callback confirms the unsubscription", spec="§11.4", group=G)
@requires("subscribe", "unsubscribe")
@requires_receiver
def on_unsubscribe(ctx: CaseContext) -> None:
    """After unsubscribing a fresh subscription, on-unsubscribe carries the transaction_id,
    correlation_id, status succ and subscription_status with the code now `unsubscribe`."""
    flow = flows.unsubscription(ctx)
    ex = ctx.exchanges[-1]
    msg = flow.cb.message
    if msg.get("transaction_id") != flow.transaction_id:
        ctx.fail(
            "Wrong transaction_id",
            f"Expected {flow.transaction_id!r}, got {msg.get('transaction_id')!r} "
            "at $.message.transaction_id",
            exchange=ex,
        )
    if msg.get("correlation_id") != flow.correlation_id:
        ctx.fail(
            "Wrong correlation_id",
            f"Expected the Ack's {flow.correlation_id!r}, got "
            f"{msg.get('correlation_id')!r} at $.message.correlation_id",
            exchange=ex,
        )
    if msg.get("status") != "succ":
        ctx.fail(
            "Not successful",
            f"Expected succ, got {msg.get('status')!r} ({msg.get('status_reason_code')}) "
            "at $.message.status",
            exchange=ex,
        )
    codes = flow.request["message"]["subscription_codes"]
    states = {
        s.get("code"): s.get("status")
        for s in msg.get("subscription_status") or []
        if isinstance(s, dict)
    }
    if any(states.get(c) != "unsubscribe" for c in codes):
        ctx.fail(
            "Codes not unsubscribed",
            f"Expected {codes} with status unsubscribe, got {states} at "
            "$.message.subscription_status",
            severity=Severity.MEDIUM,
            exchange=ex,
        )


def _unsubscribe_rejected(ctx: CaseContext, codes: list[str], what: str) -> None:
    ex = ctx.send("unsubscribe", ctx.build.unsubscribe(codes))
    expect.no_server_error(ex, what)
    if (
        expect.dig(ex.response_json, "message.ack_status") in ("ACK", "NACK")
        and ctx.receiver is not None
    ):
        callback = expect.callback_for(ctx, ex, "on-unsubscribe", "the on-unsubscribe callback")
        msg = callback.message
        if msg.get("status") == "rjct" and msg.get("status_reason_code") in _UNSUB_CODES:
            return
        states = [
            s.get("status") for s in msg.get("subscription_status") or [] if isinstance(s, dict)
        ]
        ctx.fail(
            f"{what}: not rejected",
            f"Expected status rjct with {_UNSUB_CODES[0]}, got "
            f"{msg.get('status')!r}/{msg.get('status_reason_code')!r} "
            f"(subscription_status {states}) "
            "at $.message.status",
            exchange=ctx.exchanges[-1],
        )
    expect.rejected(ctx, ex, what)


@check(
    "DCI-SUB-005",
    "Unsubscribing an unknown code is rejected",
    spec="§11.4 rjct.subscription_code.invalid",
    group=G,
)
@requires("unsubscribe")
def unknown_code(ctx: CaseContext) -> None:
    """An unknown subscription code: on-unsubscribe with status rjct and
    rjct.subscription_code.invalid, or an ERR Ack with err.request.bad."""
    _unsubscribe_rejected(ctx, ["conformance-no-such-subscription"], "unknown subscription code")


@check(
    "DCI-SUB-006",
    "A 99-character subscription code is accepted",
    spec="§11.4 subscription_codes maxLength 99",
    group=G,
)
@requires("unsubscribe")
def code_99(ctx: CaseContext) -> None:
    """A code of exactly 99 characters passes the request checks (ACK or NACK; the code is
    unknown, so a later rjct callback is fine)."""
    ex = ctx.send("unsubscribe", ctx.build.unsubscribe(["c" * 99]))
    expect.ack(ex, "unsubscribe with a 99-character code", statuses=("ACK", "NACK"))


@check(
    "DCI-SUB-007",
    "A 100-character subscription code is rejected",
    spec="§11.4 subscription_codes maxLength 99",
    group=G,
)
@requires("unsubscribe")
def code_100(ctx: CaseContext) -> None:
    """A code of 100 characters violates maxLength 99: ERR Ack with err.request.bad (HTTP 4xx
    or 200)."""
    ex = ctx.send("unsubscribe", ctx.build.unsubscribe(["c" * 100]))
    expect.rejected(ctx, ex, "100-character subscription code")


@check(
    "DCI-SUB-008",
    "Subscribe with a timestamp without offset is rejected",
    spec="§4 timestamp date-time",
    group=G,
)
@requires("subscribe")
def timestamp_no_offset(ctx: CaseContext) -> None:
    """A subscribe_request item timestamp '2024-01-15T10:30:00' (no offset) is not a valid
    date-time: ERR with err.request.bad, or the item rejected with rjct.timestamp.invalid."""
    envelope = ctx.build.subscribe()
    envelope["message"]["subscribe_request"][0]["timestamp"] = "2024-01-15T10:30:00"
    ex = ctx.send("subscribe", envelope)
    expect.rejected(
        ctx,
        ex,
        "timestamp without offset",
        item_codes=("rjct.timestamp.invalid",),
        items_path="message.subscribe_response",
        callback_action="on-subscribe",
    )


@check(
    "DCI-SUB-009",
    "Unsubscribing twice is rejected the second time",
    spec="§11.4 rjct.event.already_unsubscribed",
    group=G,
)
@requires("subscribe", "unsubscribe")
@requires_receiver
def twice(ctx: CaseContext) -> None:
    """Unsubscribing an already unsubscribed code: rjct.event.already_unsubscribed or
    rjct.subscription_code.invalid in on-unsubscribe, or an ERR Ack."""
    first = flows.unsubscription(ctx)
    codes = list(first.request["message"]["subscription_codes"])
    ex = ctx.send("unsubscribe", ctx.build.unsubscribe(codes))
    expect.no_server_error(ex, "second unsubscribe")
    if expect.dig(ex.response_json, "message.ack_status") in ("ACK", "NACK"):
        msg = expect.callback_for(ctx, ex, "on-unsubscribe", "the on-unsubscribe callback").message
        ok = ("rjct.event.already_unsubscribed", "rjct.subscription_code.invalid")
        if msg.get("status") == "rjct" and msg.get("status_reason_code") in ok:
            return
        ctx.fail(
            "Second unsubscribe accepted",
            f"Expected rjct with one of {ok}, got {msg.get('status')!r}/"
            f"{msg.get('status_reason_code')!r} at $.message.status",
            severity=Severity.LOW,
            exchange=ctx.exchanges[-1],
        )
    expect.rejected(ctx, ex, "second unsubscribe")
