"""Signatures: the registry's JWKS, its signed responses and callbacks, and its verification
of the tester's signatures (unsigned, tampered, garbage, unknown-key and expired ones)."""

from __future__ import annotations

import copy
import json
from typing import Any

from jwcrypto import jwk

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires, requires_receiver
from conformance.context import CaseContext
from conformance.signing import TesterKeys, sign_dci, sign_envelope

G = "signatures"
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")
_SIG_CODES = ("err.signature.invalid",)


@check(
    "DCI-SIG-001",
    "The registry publishes a valid JWKS",
    spec="JWKS API GET /.well-known/jwks.json; §8",
    group=G,
)
@requires("response_signatures")
def jwks_published(ctx: CaseContext) -> None:
    """GET on the JWKS URL (no auth) returns {keys: [...]}, each key with kty, kid, use, alg,
    at least one `use: sig` key, and no private key material."""
    ex = ctx.client.get(ctx.config.jwks_url, label="jwks")
    body = expect.success(ex, "JWKS", allowed=(200,))
    expect.schema(ctx, "JWKS", body, ex, "JWKS")
    keys = body.get("keys") or []
    for i, key in enumerate(keys):
        leaked = [m for m in _PRIVATE_MEMBERS if m in key]
        if leaked:
            ctx.fail(
                "Private key published",
                f"Expected public members only, got {leaked} at $.keys[{i}]",
                severity=Severity.CRITICAL,
                exchange=ex,
            )
    if not any(k.get("use") == "sig" for k in keys):
        ctx.fail(
            "No signing key",
            "Expected a key with use 'sig', got none at $.keys[*].use",
            exchange=ex,
        )


@check("DCI-SIG-002", "JWKS key ids are RFC 7638 thumbprints", spec="JWKS API JWK.kid", group=G)
@requires("response_signatures")
def jwks_thumbprints(ctx: CaseContext) -> None:
    """Each `kid` is the RFC 7638 SHA-256 thumbprint of its key, as the JWKS API defines."""
    ex = ctx.client.get(ctx.config.jwks_url, label="jwks")
    body = expect.success(ex, "JWKS", allowed=(200,))
    for i, item in enumerate(body.get("keys") or []):
        try:
            thumb = jwk.JWK(**item).thumbprint()
        except Exception as exc:
            ctx.fail(
                "Unreadable JWK", f"Expected a valid JWK, got {exc} at $.keys[{i}]", exchange=ex
            )
        if item.get("kid") != thumb:
            ctx.fail(
                "kid is not the thumbprint",
                f"Expected {thumb!r}, got {item.get('kid')!r} at $.keys[{i}].kid",
                severity=Severity.LOW,
                exchange=ex,
            )


@check("DCI-SIG-003", "Sync search responses are signed", spec="§8 MsgSignature", group=G)
@requires("sync_search", "response_signatures")
def sync_search_signed(ctx: CaseContext) -> None:
    """The sync search response's `signature` verifies over {header, message} with a key from
    the registry's JWKS (compact JWS or the Signature: string)."""
    flow = flows.sync_search(ctx)
    expect.signature(ctx, flow.body, flow.exchange, "sync search response")


@check("DCI-SIG-004", "Sync txn status responses are signed", spec="§8, §12.2", group=G)
@requires("sync_txn_status", "async_search", "response_signatures")
@requires_receiver
def sync_txn_signed(ctx: CaseContext) -> None:
    """The sync txn status response's signature verifies against the registry's JWKS."""
    search = flows.async_search(ctx)
    flow = flows.sync_txn(ctx, "transaction_id", search.transaction_id)
    expect.signature(ctx, flow.body, flow.exchange, "sync txn status response")


def _callback_signed(ctx: CaseContext, flow: flows.Flow, what: str) -> None:
    expect.signature(ctx, flow.cb.json, ctx.exchanges[-1], what)


@check("DCI-SIG-005", "on-search callbacks are signed", spec="§8", group=G)
@requires("async_search", "response_signatures")
@requires_receiver
def on_search_signed(ctx: CaseContext) -> None:
    """The on-search callback's signature verifies against the registry's JWKS."""
    _callback_signed(ctx, flows.async_search(ctx), "on-search callback")


@check("DCI-SIG-006", "on-subscribe callbacks are signed", spec="§8", group=G)
@requires("subscribe", "response_signatures")
@requires_receiver
def on_subscribe_signed(ctx: CaseContext) -> None:
    """The on-subscribe callback's signature verifies against the registry's JWKS."""
    _callback_signed(ctx, flows.subscription(ctx), "on-subscribe callback")


@check("DCI-SIG-007", "on-unsubscribe callbacks are signed", spec="§8", group=G)
@requires("subscribe", "unsubscribe", "response_signatures")
@requires_receiver
def on_unsubscribe_signed(ctx: CaseContext) -> None:
    """The on-unsubscribe callback's signature verifies against the registry's JWKS."""
    _callback_signed(ctx, flows.unsubscription(ctx), "on-unsubscribe callback")


@check("DCI-SIG-008", "txn on-status callbacks are signed", spec="§8", group=G)
@requires("txn_status", "async_search", "response_signatures")
@requires_receiver
def txn_on_status_signed(ctx: CaseContext) -> None:
    """The txn on-status callback's signature verifies against the registry's JWKS."""
    _callback_signed(ctx, flows.txn_async(ctx), "txn on-status callback")


@check("DCI-SIG-009", "A correctly signed request is accepted", spec="§8", group=G)
@requires("sync_search")
def signed_accepted(ctx: CaseContext) -> None:
    """A request signed with the tester's registered key (configured scheme) is not refused
    with err.signature.*: the registry can verify real signatures."""
    ex = ctx.send("sync_search", ctx.build.missing_id_search())
    code = expect.describe_error_body(ex.response_json)
    if code.startswith("err.signature"):
        ctx.fail(
            "Valid signature refused",
            f"Expected acceptance, got HTTP {ex.status} {code}",
            exchange=ex,
        )
    expect.success(ex, "signed sync search", allowed=(200,))


def _send_modified(ctx: CaseContext, endpoint: str, envelope: dict[str, Any]) -> Any:
    return ctx.send(endpoint, envelope, sign=False)


def _tampered(ctx: CaseContext) -> dict[str, Any]:
    signed = ctx.client.sign(ctx.build.missing_id_search(), scheme=_scheme(ctx))
    tampered = copy.deepcopy(signed)
    tampered["message"]["search_request"][0]["search_criteria"]["query"]["value"] = "TAMPERED-0000"
    return tampered


def _scheme(ctx: CaseContext) -> str:
    scheme = ctx.config.identity.signature_scheme
    return scheme if scheme != "none" else "jws"


def _garbage(ctx: CaseContext) -> dict[str, Any]:
    envelope = ctx.build.missing_id_search()
    return {"signature": "unsigned-stub", **envelope}


def _unknown_key(ctx: CaseContext) -> dict[str, Any]:
    stranger = TesterKeys.generate(ctx.env.keys.key_type)
    return sign_envelope(
        stranger, _scheme(ctx), ctx.config.identity.sender_id, ctx.build.missing_id_search()
    )


_NEGATIVES = [
    (
        "DCI-SIG-010",
        "search",
        "Unsigned async search is rejected",
        "unsigned",
        ("err.signature.missing",),
    ),
    (
        "DCI-SIG-011",
        "sync_search",
        "Unsigned sync search is rejected",
        "unsigned",
        ("err.signature.missing",),
    ),
    ("DCI-SIG-012", "search", "Tampered async search is rejected", "tampered", _SIG_CODES),
    ("DCI-SIG-013", "sync_search", "Tampered sync search is rejected", "tampered", _SIG_CODES),
    (
        "DCI-SIG-014",
        "search",
        "Async search with an invalid signature value is rejected",
        "garbage",
        _SIG_CODES,
    ),
    (
        "DCI-SIG-015",
        "sync_search",
        "Sync search with an invalid signature value is rejected",
        "garbage",
        _SIG_CODES,
    ),
    (
        "DCI-SIG-016",
        "sync_search",
        "Signature by an unregistered key is rejected",
        "unknown-key",
        _SIG_CODES,
    ),
]
_FEATURE = {"unsigned": "unsigned_rejected"}
_ENDPOINT_FEATURE = {"search": "async_search", "sync_search": "sync_search"}


def _make_negative(
    case_id: str, endpoint: str, title: str, kind: str, codes: tuple[str, ...]
) -> None:
    def case(ctx: CaseContext) -> None:
        if kind == "unsigned":
            envelope = ctx.build.missing_id_search()
        elif kind == "tampered":
            envelope = _tampered(ctx)
        elif kind == "garbage":
            envelope = _garbage(ctx)
        else:
            envelope = _unknown_key(ctx)
        ex = _send_modified(ctx, endpoint, envelope)
        # 401/403 are not the standard's signature errors; the Ack/err body is required
        expect.rejected(ctx, ex, title, codes=codes)

    case.__doc__ = (
        f"{title}: the standard's error ({' or '.join(codes)}) in an ERR Ack or error body, "
        "HTTP 4xx or 200 (the spec does not fix the status)."
    )
    feature = _FEATURE.get(kind, "request_signatures")
    decorated = requires(_ENDPOINT_FEATURE[endpoint], feature)(case)
    check(case_id, title, spec="§8 MsgSignature; §3 err.signature.*", group=G)(decorated)


for _args in _NEGATIVES:
    _make_negative(*_args)


@check("DCI-SIG-017", "Expired Signature: string is rejected", spec="§8 (created/expires)", group=G)
@requires("sync_search", "request_signatures", "dci_signature_scheme")
def expired_signature(ctx: CaseContext) -> None:
    """A dci-signature whose `expires` lies in the past is refused with err.signature.invalid."""
    envelope = ctx.build.missing_id_search()
    value = sign_dci(
        ctx.env.keys,
        ctx.config.identity.sender_id,
        envelope["header"],
        envelope["message"],
        created=1_000_000_000,
        ttl_s=60,
    )
    ex = _send_modified(ctx, "sync_search", {"signature": value, **envelope})
    expect.rejected(ctx, ex, "expired signature", codes=_SIG_CODES)


@check(
    "DCI-SIG-018",
    "Signature over an altered header is rejected",
    spec="§8 (signature over {header}+{message})",
    group=G,
)
@requires("sync_search", "request_signatures")
def tampered_header(ctx: CaseContext) -> None:
    """The signature covers the header too: respelling header.message_ts after signing
    (Z as +00:00, same instant, other bytes) must make it fail."""
    signed = ctx.client.sign(ctx.build.missing_id_search(), scheme=_scheme(ctx))
    signed = json.loads(json.dumps(signed))
    signed["header"]["message_ts"] = signed["header"]["message_ts"].replace("Z", "+00:00")
    ex = _send_modified(ctx, "sync_search", signed)
    expect.rejected(ctx, ex, "altered header", codes=_SIG_CODES)
