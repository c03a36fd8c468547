"""The `client` profile: a social-protection system's callback receivers (on-search,
on-subscribe, on-unsubscribe, txn/on-status, notify). The suite plays the registry, sends
valid and invalid callbacks, and judges the Acks."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from conformance import expect
from conformance.checks import Profile, Severity, check, requires
from conformance.context import CaseContext

G = "client"
Json = dict[str, Any]

# endpoint name -> (title word, builder of a valid callback)
_CALLBACKS: dict[str, tuple[str, Callable[[CaseContext], Json]]] = {
    "on_search": ("on-search", lambda c: c.callbacks.on_search()),
    "on_subscribe": ("on-subscribe", lambda c: c.callbacks.on_subscribe()),
    "on_unsubscribe": ("on-unsubscribe", lambda c: c.callbacks.on_unsubscribe()),
    "txn_on_status": ("txn on-status", lambda c: c.callbacks.txn_on_status()),
    "notify": ("notify", lambda c: c.callbacks.notify()),
}


def _valid_case(case_id: str, endpoint: str) -> None:
    word, build = _CALLBACKS[endpoint]
    title = f"A valid {word} callback is acknowledged"

    def case(ctx: CaseContext) -> None:
        ex = ctx.send(endpoint, build(ctx))
        expect.ack(ex, word)
        if ex.content_type.split(";")[0].strip().lower() != "application/json":
            ctx.fail(
                "Wrong Content-Type",
                f"Expected application/json, got {ex.content_type!r}",
                severity=Severity.MEDIUM,
                exchange=ex,
            )
        expect.schema(ctx, "Ack", ex.response_json, ex, f"{word} Ack")

    case.__doc__ = (
        f"A schema-valid, signed {word} callback gets HTTP 200/202 with a schema-valid "
        "Ack (ack_status ACK), Content-Type application/json."
    )
    check(case_id, title, spec="§1 callbacks, §3 Ack", group=G, profile=Profile.CLIENT)(case)


_MESSAGE_REQUIRED = {"on_subscribe", "on_unsubscribe"}


def _invalid_case(case_id: str, endpoint: str) -> None:
    word, build = _CALLBACKS[endpoint]
    missing = "`message`" if endpoint in _MESSAGE_REQUIRED else "message.transaction_id"
    title = f"{word.capitalize()} callback without {missing} is rejected"

    def case(ctx: CaseContext) -> None:
        envelope = build(ctx)
        if endpoint in _MESSAGE_REQUIRED:
            del envelope["message"]
        else:
            del envelope["message"]["transaction_id"]
        ex = ctx.send(endpoint, envelope)
        expect.rejected(ctx, ex, title)

    case.__doc__ = (
        f"A schema-invalid {word} callback (no {missing}) gets err.request.bad (ERR Ack or "
        "error body). Where the spec requires `message` it is removed (as OpenSPP's suite "
        "does); on-search, txn on-status and notify may be header-only (a header-level "
        "rejection), so a required field of the message is removed instead."
    )
    check(case_id, title, spec="§2 envelope", group=G, profile=Profile.CLIENT)(case)


for _n, _ep in enumerate(_CALLBACKS):
    _valid_case(f"DCI-CLIENT-{2 * _n + 1:03d}", _ep)
    _invalid_case(f"DCI-CLIENT-{2 * _n + 2:03d}", _ep)


@check(
    "DCI-CLIENT-011",
    "An unsigned callback is rejected",
    spec="§8; err.signature.missing",
    group=G,
    profile=Profile.CLIENT,
)
@requires("unsigned_rejected")
def unsigned(ctx: CaseContext) -> None:
    """An on-search callback without `signature` gets err.signature.missing."""
    ex = ctx.send("on_search", ctx.callbacks.on_search(), sign=False)
    expect.rejected(ctx, ex, "unsigned callback", codes=("err.signature.missing",))


@check(
    "DCI-CLIENT-012",
    "A tampered callback is rejected",
    spec="§8; err.signature.invalid",
    group=G,
    profile=Profile.CLIENT,
)
@requires("request_signatures")
def tampered(ctx: CaseContext) -> None:
    """An on-search callback altered after signing gets err.signature.invalid: a receiver that
    trusts unverified callbacks can be fed forged civil records."""
    signed = ctx.client.sign(ctx.callbacks.on_search())
    forged = copy.deepcopy(signed)
    forged["message"]["search_response"][0]["data"]["reg_records"][0]["name"]["surname"] = "Forged"
    ex = ctx.send("on_search", forged, sign=False)
    expect.rejected(ctx, ex, "tampered callback", codes=("err.signature.invalid",))


@check(
    "DCI-CLIENT-013",
    "A malformed JSON callback is rejected",
    spec="§3 err.request.bad",
    group=G,
    profile=Profile.CLIENT,
)
def malformed(ctx: CaseContext) -> None:
    """A body that is not JSON gets err.request.bad with HTTP 4xx (or an ERR Ack), not 5xx."""
    ex = ctx.client.post(ctx.endpoint("on_search"), b'{"header": ', label="malformed")
    expect.rejected(ctx, ex, "malformed callback")


@check(
    "DCI-CLIENT-014",
    "A callback with the wrong action is rejected",
    spec="§1 (action per endpoint)",
    group=G,
    profile=Profile.CLIENT,
)
def wrong_action(ctx: CaseContext) -> None:
    """An on-search body whose header.action is 'notify' gets err.request.bad."""
    envelope = ctx.callbacks.on_search()
    envelope["header"]["action"] = "notify"
    ex = ctx.send("on_search", envelope)
    expect.rejected(ctx, ex, "wrong action")


@check(
    "DCI-CLIENT-015",
    "Callbacks require a bearer token",
    spec="§10",
    group=G,
    profile=Profile.CLIENT,
)
@requires("auth")
def no_token(ctx: CaseContext) -> None:
    """A callback without Authorization is refused with HTTP 401 or 403."""
    ex = ctx.send("on_search", ctx.callbacks.on_search(), auth="none")
    expect.no_server_error(ex, "no token")
    if ex.status not in (401, 403):
        ctx.fail(
            "Accepted without token",
            f"Expected HTTP 401 or 403, got HTTP {ex.status}",
            severity=Severity.CRITICAL,
            exchange=ex,
        )


@check(
    "DCI-CLIENT-016",
    "A schema-invalid notify is rejected",
    spec="§11.3 NotifyEventRequest",
    group=G,
    profile=Profile.CLIENT,
)
def notify_invalid(ctx: CaseContext) -> None:
    """A notify whose notify_event items lack `data` gets err.request.bad."""
    envelope = ctx.callbacks.notify()
    for event in envelope["message"]["notify_event"]:
        event.pop("data")
    ex = ctx.send("notify", envelope)
    expect.rejected(ctx, ex, "notify without data")


@check(
    "DCI-CLIENT-017",
    "A replayed callback is not processed twice",
    spec="§2.1 message_id",
    group=G,
    profile=Profile.CLIENT,
)
@requires("replay_protection")
def replayed(ctx: CaseContext) -> None:
    """The same signed notify sent twice: the second is rejected (err.request.bad or
    rjct.message_id.duplicate), or acknowledged as a duplicate (ACK is accepted: the spec's
    at-least-once delivery lets a receiver de-duplicate silently); a 5xx fails."""
    envelope = ctx.client.sign(ctx.callbacks.notify())
    expect.ack(ctx.send("notify", envelope, sign=False), "first notify")
    again = ctx.send("notify", json.loads(json.dumps(envelope)), sign=False)
    expect.no_server_error(again, "replayed notify")
