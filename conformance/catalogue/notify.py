"""Notify: after a subscription, a triggered vital event reaches the subscriber as `notify`.

The event is made by the operator's trigger ([notify] trigger_command or trigger_url), e.g. a
call to the OpenCRVS simulator; without one these cases are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires, requires_receiver
from conformance.context import CaseContext
from conformance.receiver import Callback, Matcher, for_transaction

G = "notify"


def _is_notify(since: float) -> Matcher:
    def match(cb: Callback) -> bool:
        return cb.received_at >= since and cb.header.get("action") == "notify"

    return match


def _notified(ctx: CaseContext) -> flows.Flow:
    """Subscribe (shared), trigger one event, wait for the notify (shared per run)."""

    def make() -> flows.Flow:
        sub = flows.subscription(ctx)
        start = len(ctx.exchanges)
        since = time.monotonic()
        ctx.trigger_event()
        cb = ctx.wait_callback(_is_notify(since), "a notify after the triggered event")
        return flows.Flow(
            sub.request, sub.exchange, sub.body, cb, sub.exchanges + ctx.exchanges[start:]
        )

    return flows.shared_flow(ctx, "notify", make)


@check("DCI-NOTIFY-001", "A subscribed event is notified", spec="§11.3 NotifyEventRequest", group=G)
@requires("subscribe", "notify", "notify_trigger")
@requires_receiver
def delivered(ctx: CaseContext) -> None:
    """After subscribing and triggering an event, a schema-valid notify (MsgCallbackHeader,
    action notify, NotifyEventRequest) reaches the subscriber."""
    flow = _notified(ctx)
    expect.schema(ctx, "NotifyCallback", flow.cb.json, ctx.exchanges[-1], "notify")


@check("DCI-NOTIFY-002", "Notifications are signed", spec="§8, §11.3", group=G)
@requires("subscribe", "notify", "notify_trigger", "response_signatures")
@requires_receiver
def signed(ctx: CaseContext) -> None:
    """The notify's signature verifies against the registry's JWKS."""
    flow = _notified(ctx)
    expect.signature(ctx, flow.cb.json, ctx.exchanges[-1], "notify")


@check(
    "DCI-NOTIFY-003", "Notifications carry the subscribed event and records", spec="§11.3", group=G
)
@requires("subscribe", "notify", "notify_trigger")
@requires_receiver
def matches_subscription(ctx: CaseContext) -> None:
    """Each notify_event has data.reg_records and, when reg_event_type is given, the
    subscribed event type (prefixed or bare spelling, compared on the last segment)."""
    flow = _notified(ctx)
    ex = ctx.exchanges[-1]
    events = expect.field(flow.cb.json, "message.notify_event", ex, "notify events", list)
    wanted = ctx.config.data.event_type.rsplit(":", 1)[-1].lower().replace("_", "")
    for i, event in enumerate(events):
        expect.field(
            event, "data.reg_records", ex, f"records of $.message.notify_event[{i}]", (list, dict)
        )
        got = expect.dig(event, "data.reg_event_type")
        if got is not None and str(got).rsplit(":", 1)[-1].lower().replace("_", "") != wanted:
            ctx.fail(
                "Other event type",
                f"Expected {ctx.config.data.event_type!r}, got {got!r} at "
                f"$.message.notify_event[{i}].data.reg_event_type",
                severity=Severity.MEDIUM,
                exchange=ex,
            )


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (for codes placed anywhere in header.meta)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _names_subscription(codes: list[str], transaction_id: str) -> Matcher:
    def match(cb: Callback) -> bool:
        if cb.header.get("action") != "notify":
            return False
        if cb.message.get("transaction_id") == transaction_id:
            return True
        if any(s in codes for s in _strings(cb.header.get("meta"))):
            return True
        events = cb.message.get("notify_event")
        return isinstance(events, list) and any(
            isinstance(e, dict) and e.get("subscription_code") in codes for e in events
        )

    return match


@check(
    "DCI-NOTIFY-005",
    "Notifications name the subscription",
    spec="§11.3 (gap: no field for the code; §11.2 code)",
    group=G,
)
@requires("subscribe", "notify", "notify_trigger")
@requires_receiver
def names_subscription(ctx: CaseContext) -> None:
    """A subscriber must tell which of its subscriptions an event answers. The standard has
    no field for it (digest §11.3 gap), so any of its suggested placements passes: the
    subscription's code in `notify_event[].subscription_code` or anywhere in `header.meta`,
    or the subscribe request's transaction_id as the notify's `message.transaction_id`."""
    flow = _notified(ctx)
    sub = flows.subscription(ctx)
    codes = flows.subscription_codes(ctx, sub)
    ctx.wait_callback(
        _names_subscription(codes, sub.transaction_id),
        f"a notify naming subscription {codes[0]!r} (or transaction {sub.transaction_id!r})",
        after=flow.exchanges[-1] if flow.exchanges else None,
    )


@check("DCI-NOTIFY-004", "No notify after unsubscribing", spec="§11.4", group=G)
@requires("subscribe", "unsubscribe", "notify", "notify_trigger")
@requires_receiver
def silent_after_unsubscribe(ctx: CaseContext) -> None:
    """Once every subscription the tester made in this run is unsubscribed, a new event
    brings no notify within the quiet period."""
    _notified(ctx)
    assert ctx.receiver is not None
    for callback in ctx.receiver.matching(lambda cb: cb.header.get("action") == "on-subscribe"):
        for item in callback.message.get("subscribe_response") or []:
            for sub in item.get("subscriptions") or [] if isinstance(item, dict) else []:
                if isinstance(sub, dict) and isinstance(sub.get("code"), str):
                    # already-unsubscribed codes may be refused; only the end state matters
                    request = ctx.build.unsubscribe([sub["code"]])
                    ctx.send("unsubscribe", request)
                    done = for_transaction(request["message"]["transaction_id"], "on-unsubscribe")
                    ctx.receiver.wait_for(done, ctx.config.receiver.callback_timeout_s)
    since = time.monotonic()
    ctx.trigger_event()
    quiet = max(ctx.config.receiver.quiet_period_s, 0.1)
    late = ctx.receiver.wait_for(_is_notify(since), quiet)
    if late is not None:
        ctx.exchanges.append(late.as_exchange(ctx.receiver.base_url))
        ctx.fail(
            "Notified after unsubscribe",
            f"Expected no notify within {quiet:g} s, got one",
            exchange=ctx.exchanges[-1],
        )
