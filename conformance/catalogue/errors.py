"""Error handling: malformed, schema-invalid, replayed, stale and mislabelled requests get the
standard's errors (never a 5xx), and valid edge values are accepted.

Rejections are accepted in every form the standard allows (see `expect.rejected`): an ERR
Ack or error body with the err.* code at HTTP 4xx or 200, or, on sync endpoints, a response
whose header/items are rjct with the matching reason code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires
from conformance.context import CaseContext
from conformance.envelopes import timestamp

G = "errors"
Json = dict[str, Any]


def _missing_message(case_id: str, endpoint: str) -> None:
    feature, build = flows.VALID_REQUESTS[endpoint]
    title = f"{endpoint.replace('_', ' ').capitalize()} without `message` is rejected"

    def case(ctx: CaseContext) -> None:
        envelope = build(ctx)
        del envelope["message"]
        ex = ctx.send(endpoint, envelope)
        expect.rejected(ctx, ex, title)

    case.__doc__ = (
        "`message` is required for requests: err.request.bad (ERR Ack or error body, "
        "HTTP 4xx or 200)."
    )
    check(case_id, title, spec="§2 envelope (message required)", group=G)(requires(feature)(case))


for _n, _ep in enumerate(flows.VALID_REQUESTS, start=1):
    _missing_message(f"DCI-ERR-{_n:03d}", _ep)


@check("DCI-ERR-007", "Malformed JSON is rejected", spec="§3 err.request.bad", group=G)
@requires("sync_search")
def malformed_json(ctx: CaseContext) -> None:
    """A body that is not JSON gets err.request.bad with HTTP 4xx (or an ERR Ack), not a 5xx."""
    ex = ctx.client.post(
        ctx.endpoint("sync_search"), b'{"header": {"action": "search", ', label="malformed"
    )
    expect.rejected(ctx, ex, "malformed JSON")


@check(
    "DCI-ERR-008",
    "A header action not matching the endpoint is rejected",
    spec="§1 (action per endpoint); rjct.action.invalid",
    group=G,
)
@requires("sync_search")
def wrong_action(ctx: CaseContext) -> None:
    """header.action 'subscribe' sent to the search endpoint: rjct.action.invalid or
    rjct.action.not_supported in the header, or err.request.bad."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["action"] = "subscribe"
    ex = ctx.send("sync_search", envelope)
    expect.rejected(
        ctx, ex, "wrong action", header_codes=("rjct.action.invalid", "rjct.action.not_supported")
    )


@check(
    "DCI-ERR-009",
    "A replayed message_id is rejected",
    spec="§2.1 message_id; rjct.message_id.duplicate",
    group=G,
)
@requires("sync_search", "replay_protection")
def replay(ctx: CaseContext) -> None:
    """Sending the very same signed envelope twice: the second gets rjct.message_id.duplicate
    in the header or err.request.bad."""
    envelope = ctx.client.sign(ctx.build.missing_id_search())
    first = ctx.send("sync_search", envelope, sign=False)
    expect.success(first, "first send", allowed=(200,))
    again = ctx.send("sync_search", envelope, sign=False)
    expect.rejected(ctx, again, "replayed message", header_codes=("rjct.message_id.duplicate",))


@check(
    "DCI-ERR-010",
    "A stale message_ts is rejected",
    spec="§2.1 message_ts; rjct.message_ts.invalid",
    group=G,
)
@requires("sync_search", "replay_protection")
def stale(ctx: CaseContext) -> None:
    """A message_ts two days old (an expired, possibly replayed message): rjct.message_ts.invalid
    in the header or err.request.bad."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["message_ts"] = timestamp(timedelta(days=-2))
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, "stale message_ts", header_codes=("rjct.message_ts.invalid",))


@check(
    "DCI-ERR-011",
    "A message_ts that is not a date-time is rejected",
    spec="§2.1 message_ts date-time",
    group=G,
)
@requires("sync_search")
def bad_message_ts(ctx: CaseContext) -> None:
    """message_ts 'not-a-timestamp': rjct.message_ts.invalid in the header or err.request.bad."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["message_ts"] = "not-a-timestamp"
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, "invalid message_ts", header_codes=("rjct.message_ts.invalid",))


def _async_search_with(ctx: CaseContext, change: Callable[[Json], None]) -> Any:
    envelope = ctx.build.missing_id_search()
    change(envelope)
    return ctx.send("search", envelope)


def _item(envelope: Json) -> Json:
    item: Json = envelope["message"]["search_request"][0]
    return item


_FORMAT_CASES: list[tuple[str, str, Callable[[Json], None], bool, tuple[str, ...]]] = [
    (
        "DCI-ERR-012",
        "Item timestamp 'not-a-timestamp' is rejected",
        lambda e: _item(e).update(timestamp="not-a-timestamp"),
        False,
        ("rjct.timestamp.invalid",),
    ),
    (
        "DCI-ERR-013",
        "Item timestamp with an offset is accepted",
        lambda e: _item(e).update(timestamp="2024-01-15T10:30:00+05:30"),
        True,
        (),
    ),
    (
        "DCI-ERR-014",
        "Locale 'eng' (ISO 639-3) is accepted",
        lambda e: _item(e).update(locale="eng"),
        True,
        (),
    ),
    (
        "DCI-ERR-016",
        "Locale 'ENG' (upper case) is rejected",
        lambda e: _item(e).update(locale="ENG"),
        False,
        (),
    ),
    (
        "DCI-ERR-017",
        "A 99-character transaction_id is accepted",
        lambda e: e["message"].update(transaction_id="t" * 99),
        True,
        (),
    ),
    (
        "DCI-ERR-018",
        "A 100-character transaction_id is rejected",
        lambda e: e["message"].update(transaction_id="t" * 100),
        False,
        (),
    ),
    (
        "DCI-ERR-019",
        "A 50-character reference_id is accepted",
        lambda e: _item(e).update(reference_id="r" * 50),
        True,
        (),
    ),
]


def _format_case(
    case_id: str, title: str, change: Callable[[Json], None], ok: bool, items: tuple[str, ...]
) -> None:
    def case(ctx: CaseContext) -> None:
        ex = _async_search_with(ctx, change)
        if ok:
            expect.ack(ex, title)
        else:
            expect.rejected(
                ctx, ex, title, item_codes=items, callback_action="on-search" if items else None
            )

    case.__doc__ = f"{title} by the async search endpoint: " + (
        "ACK (HTTP 200/202)."
        if ok
        else "err.request.bad in an ERR Ack or error body"
        + (f", or ACK then an item rjct with {items[0]}" if items else "")
        + "."
    )
    check(case_id, title, spec="§4 (timestamp date-time, locale ^[a-z]{3}$, ids <= 99)", group=G)(
        requires("async_search")(case)
    )


for _args in _FORMAT_CASES:
    _format_case(*_args)


@check(
    "DCI-ERR-015",
    "Locale 'en' (the standard's own example) is handled cleanly",
    spec="§4 locale ^[a-z]{3}$ (its example 'en' contradicts the pattern)",
    group=G,
)
@requires("sync_search")
def two_letter_locale(ctx: CaseContext) -> None:
    """The standard's pattern for `locale` is ^[a-z]{3}$ (ISO 639-3), but its own example is
    `en` (digest §4 notes the contradiction), so both answers are allowed: reject it
    (err.request.bad, or the item rjct), or accept it (a tolerant reader). What the registry
    sends back must follow the pattern either way: an accepted request gets a schema-valid
    response whose items carry no locale outside ^[a-z]{3}$ (no echoed `en`)."""
    envelope = ctx.build.missing_id_search()
    _item(envelope)["locale"] = "en"
    title = "locale 'en'"
    ex = ctx.send("sync_search", envelope)
    expect.no_server_error(ex, title)
    body = ex.response_json
    accepted = (
        ex.status == 200
        and isinstance(body, dict)
        and expect.dig(body, "header.status") != "rjct"
        and expect.dig(body, "message.ack_status") != "ERR"
        and not any(
            isinstance(i, dict) and i.get("status") == "rjct"
            for i in expect.dig(body, "message.search_response") or []
        )
    )
    if not accepted:
        expect.rejected(
            ctx, ex, title, item_codes=("rjct.locale.invalid", "rjct.search_criteria.invalid")
        )
        return
    for i, item in enumerate(expect.dig(body, "message.search_response") or []):
        locale = item.get("locale") if isinstance(item, dict) else None
        if locale is not None and not (
            isinstance(locale, str) and re.fullmatch("[a-z]{3}", locale)
        ):
            ctx.fail(
                "Locale outside the standard's pattern",
                f"Expected a locale matching ^[a-z]{{3}}$ or none, got {locale!r} at "
                f"$.message.search_response[{i}].locale",
                severity=Severity.MEDIUM,
                exchange=ex,
            )
    expect.schema(ctx, "SyncSearchResponse", body, ex, "sync search response to locale 'en'")


@check(
    "DCI-ERR-020",
    "header.total_count must match the batch",
    spec="§2.1 total_count; rjct.total_count.invalid",
    group=G,
)
@requires("sync_search")
def total_count(ctx: CaseContext) -> None:
    """total_count 5 with one search_request item: rjct.total_count.invalid in the header or
    err.request.bad."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["total_count"] = 5
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, "total_count mismatch", header_codes=("rjct.total_count.invalid",))


@check(
    "DCI-ERR-021",
    "An unsupported protocol version is rejected",
    spec="§2.1 version; err.version.not_supported",
    group=G,
)
@requires("sync_search")
def version(ctx: CaseContext) -> None:
    """header.version '9.9.9': err.version.not_supported, or rjct.version.invalid in the header."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["version"] = "9.9.9"
    ex = ctx.send("sync_search", envelope)
    expect.rejected(
        ctx,
        ex,
        "unsupported version",
        codes=("err.version.not_supported", "err.request.bad"),
        header_codes=("rjct.version.invalid",),
    )


@check(
    "DCI-ERR-022",
    "A request without Content-Type is refused",
    spec="§1 (body application/json)",
    group=G,
)
@requires("sync_search", "content_type")
def no_content_type(ctx: CaseContext) -> None:
    """A JSON body sent with no Content-Type header gets HTTP 400 or 415."""
    body = json.dumps(ctx.client.sign(ctx.build.missing_id_search())).encode()
    ex = ctx.client.post(
        ctx.endpoint("sync_search"), body, content_type=None, label="no content-type"
    )
    expect.no_server_error(ex, "no Content-Type")
    if ex.status not in (400, 415):
        ctx.fail(
            "Accepted without Content-Type",
            f"Expected HTTP 400 or 415, got HTTP {ex.status}",
            severity=Severity.MEDIUM,
            exchange=ex,
        )


@check(
    "DCI-ERR-023",
    "A request with Content-Type text/plain is refused",
    spec="§1 (body application/json)",
    group=G,
)
@requires("sync_search", "content_type")
def wrong_content_type(ctx: CaseContext) -> None:
    """A JSON body labelled text/plain gets HTTP 400 or 415."""
    body = json.dumps(ctx.client.sign(ctx.build.missing_id_search())).encode()
    ex = ctx.client.post(
        ctx.endpoint("sync_search"), body, content_type="text/plain", label="text/plain"
    )
    expect.no_server_error(ex, "text/plain")
    if ex.status not in (400, 415):
        ctx.fail(
            "Accepted as text/plain",
            f"Expected HTTP 400 or 415, got HTTP {ex.status}",
            severity=Severity.MEDIUM,
            exchange=ex,
        )


@check(
    "DCI-ERR-024",
    "application/json with a charset is accepted",
    spec="§1 (body application/json)",
    group=G,
)
@requires("sync_search")
def json_charset(ctx: CaseContext) -> None:
    """Content-Type 'application/json; charset=utf-8' is application/json: not HTTP 415."""
    body = json.dumps(ctx.client.sign(ctx.build.missing_id_search())).encode()
    ex = ctx.client.post(
        ctx.endpoint("sync_search"),
        body,
        content_type="application/json; charset=utf-8",
        label="json charset",
    )
    expect.success(ex, "application/json; charset=utf-8", allowed=(200,))


@check(
    "DCI-ERR-025",
    "is_msg_encrypted with a plain message is rejected",
    spec="§9 EncryptedMessage; err.encryption.invalid",
    group=G,
)
@requires("sync_search")
def fake_encryption(ctx: CaseContext) -> None:
    """header.is_msg_encrypted true but a plaintext message: err.encryption.invalid or
    err.request.bad."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["is_msg_encrypted"] = True
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, "fake encryption", codes=("err.encryption.invalid", "err.request.bad"))


@check(
    "DCI-ERR-026",
    "An unregistered sender_id is refused",
    spec="§2.1 sender_id (authz, key lookup); err.sender_id.invalid",
    group=G,
)
@requires("sync_search", "auth")
def unknown_sender(ctx: CaseContext) -> None:
    """header.sender_id naming nobody registered: err.sender_id.invalid (or the auth or
    signature error the unknown sender causes), never a normal answer. Needs `auth`: senders
    are known to a registry through client registration."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["sender_id"] = "conformance-nobody.invalid"
    ex = ctx.send("sync_search", envelope)
    if ex.status in (401, 403):
        return
    expect.rejected(
        ctx,
        ex,
        "unknown sender",
        codes=(
            "err.sender_id.invalid",
            "err.request.unauthorized",
            "err.request.forbidden",
            "err.signature.invalid",
        ),
    )


@check("DCI-ERR-027", "Wrong HTTP method is refused cleanly", spec="§1 (POST only)", group=G)
@requires("sync_search")
def wrong_method(ctx: CaseContext) -> None:
    """GET on the sync search endpoint answers 404 or 405, not 2xx or 5xx."""
    ex = ctx.client.get(ctx.endpoint("sync_search"), label="GET search")
    expect.no_server_error(ex, "GET")
    if ex.status not in (404, 405, 401, 403):
        ctx.fail(
            "GET accepted",
            f"Expected HTTP 405 (or 404), got HTTP {ex.status}",
            severity=Severity.LOW,
            exchange=ex,
        )


@check(
    "DCI-ERR-028",
    "Search without `header` is rejected",
    spec="§2 envelope (header required)",
    group=G,
)
@requires("sync_search")
def missing_header(ctx: CaseContext) -> None:
    """A signed body with `message` but no `header`: err.request.bad (ERR Ack or error body,
    HTTP 4xx or 200), never an answer or a 5xx."""
    envelope = ctx.build.missing_id_search()
    del envelope["header"]
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, "search without header")


@check(
    "DCI-ERR-029",
    "A header field of the wrong type is rejected",
    spec="§2.1 MsgHeader (total_count: integer)",
    group=G,
)
@requires("sync_search")
def wrong_type(ctx: CaseContext) -> None:
    """header.total_count as the string "1" instead of an integer: err.request.bad, or the
    header rjct with rjct.total_count.invalid."""
    envelope = ctx.build.missing_id_search()
    envelope["header"]["total_count"] = "1"
    ex = ctx.send("sync_search", envelope)
    expect.rejected(ctx, ex, "total_count as a string", header_codes=("rjct.total_count.invalid",))


@check(
    "DCI-ERR-030",
    "A search item without search_criteria is rejected",
    spec="§5.1 SearchRequest (search_criteria required)",
    group=G,
)
@requires("sync_search")
def missing_criteria(ctx: CaseContext) -> None:
    """A search_request item with reference_id and timestamp only: err.request.bad, or the
    item rjct with rjct.search_criteria.invalid."""
    envelope = ctx.build.missing_id_search()
    del _item(envelope)["search_criteria"]
    ex = ctx.send("sync_search", envelope)
    expect.rejected(
        ctx, ex, "item without search_criteria", item_codes=("rjct.search_criteria.invalid",)
    )
