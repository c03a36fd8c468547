"""Authentication: bearer tokens on every endpoint and the OAuth2 client-credentials endpoint.

AUTHZ: "Rest end points SHALL return http status 401 when access_token is invalid or
expired". For a missing token the standard names no status; 401 and 403 are accepted.
"""

from __future__ import annotations

import time

from conformance import expect
from conformance.catalogue import _flows as flows
from conformance.checks import Severity, check, requires
from conformance.context import CaseContext
from conformance.evidence import Exchange
from conformance.signing import decode_jwt_claims, self_signed_jwt, unsigned_jwt

G = "auth"


def _refused(ctx: CaseContext, ex: Exchange, what: str, statuses: tuple[int, ...]) -> None:
    expect.no_server_error(ex, what)
    if ex.status not in statuses:
        extra = ""
        if ex.status in (200, 202):
            extra = (
                f" ({expect.dig(ex.response_json, 'message.ack_status') or 'answered normally'})"
            )
        ctx.fail(
            f"{what}: not refused",
            f"Expected HTTP {' or '.join(map(str, statuses))}, got HTTP {ex.status}{extra}",
            severity=Severity.CRITICAL,
            exchange=ex,
        )


def _no_token_case(case_id: str, endpoint: str) -> None:
    feature, build = flows.VALID_REQUESTS[endpoint]
    title = f"{endpoint.replace('_', ' ').capitalize()} requires a bearer token"

    def case(ctx: CaseContext) -> None:
        ex = ctx.send(endpoint, build(ctx), auth="none")
        _refused(ctx, ex, title, (401, 403))

    case.__doc__ = "Without an Authorization header the request is refused with HTTP 401 or 403."
    check(case_id, title, spec="§10 (security: Authorization bearer on every operation)", group=G)(
        requires(feature, "auth")(case)
    )


for _n, _ep in enumerate(flows.VALID_REQUESTS, start=1):
    _no_token_case(f"DCI-AUTH-{_n:03d}", _ep)


def _real_token(ctx: CaseContext) -> str:
    token = ctx.client.token()
    if not token:
        ctx.skip("no credentials configured")
    return token


@check(
    "DCI-AUTH-007",
    "An invalid bearer token is refused with 401",
    spec="AUTHZ (401 when invalid or expired)",
    group=G,
)
@requires("sync_search", "auth")
def invalid_token(ctx: CaseContext) -> None:
    """`Authorization: Bearer invalid-token` gets HTTP 401."""
    ex = ctx.send("sync_search", ctx.build.missing_id_search(), auth="invalid-token")
    _refused(ctx, ex, "invalid token", (401,))


@check(
    "DCI-AUTH-008",
    "A token with an altered signature is refused",
    spec="AUTHZ (401 when invalid)",
    group=G,
)
@requires("sync_search", "auth", "credentials")
def tampered_token(ctx: CaseContext) -> None:
    """The registry's own token with its last signature characters changed gets HTTP 401."""
    token = _real_token(ctx)
    if token.count(".") != 2:
        ctx.skip("the token is not a JWT; cannot alter its signature")
    head, sig = token[:-6], token[-6:]
    forged = head + ("AAAAAA" if sig != "AAAAAA" else "BBBBBB")
    ex = ctx.send("sync_search", ctx.build.missing_id_search(), auth=forged)
    _refused(ctx, ex, "tampered token", (401,))


@check(
    "DCI-AUTH-009",
    "An unsigned (alg none) token is refused",
    spec="AUTHZ (401 when invalid)",
    group=G,
)
@requires("sync_search", "auth", "credentials")
def alg_none_token(ctx: CaseContext) -> None:
    """The real token's claims re-wrapped as an `alg: none` JWT get HTTP 401."""
    claims = decode_jwt_claims(_real_token(ctx)) or {
        "sub": ctx.config.auth.client_id or "conformance"
    }
    ex = ctx.send("sync_search", ctx.build.missing_id_search(), auth=unsigned_jwt(claims))
    _refused(ctx, ex, "alg none token", (401,))


@check(
    "DCI-AUTH-010",
    "A token signed by another key is refused",
    spec="AUTHZ (401 when invalid)",
    group=G,
)
@requires("sync_search", "auth", "credentials")
def foreign_token(ctx: CaseContext) -> None:
    """The real token's claims signed with the tester's key (not the registry's) get 401."""
    claims = decode_jwt_claims(_real_token(ctx)) or {
        "sub": ctx.config.auth.client_id or "conformance"
    }
    ex = ctx.send(
        "sync_search", ctx.build.missing_id_search(), auth=self_signed_jwt(ctx.env.keys, claims)
    )
    _refused(ctx, ex, "foreign token", (401,))


@check("DCI-AUTH-011", "An expired token is refused", spec="AUTHZ (401 when expired)", group=G)
@requires("sync_search", "auth", "credentials")
def expired_token(ctx: CaseContext) -> None:
    """The real token's claims with `exp` an hour in the past, as an unsigned JWT, get 401
    (whichever of the two defects the registry notices first)."""
    claims = decode_jwt_claims(_real_token(ctx)) or {
        "sub": ctx.config.auth.client_id or "conformance"
    }
    claims["exp"] = int(time.time()) - 3600
    ex = ctx.send("sync_search", ctx.build.missing_id_search(), auth=unsigned_jwt(claims))
    _refused(ctx, ex, "expired token", (401,))


@check("DCI-AUTH-012", "A valid token is accepted", spec="§10", group=G)
@requires("sync_search", "credentials")
def valid_token(ctx: CaseContext) -> None:
    """A token from the configured credentials is accepted: not HTTP 401 or 403."""
    ex = ctx.send("sync_search", ctx.build.missing_id_search())
    expect.no_server_error(ex, "valid token")
    if ex.status in (401, 403):
        ctx.fail("Valid token refused", f"Expected acceptance, got HTTP {ex.status}", exchange=ex)


@check(
    "DCI-AUTH-013",
    "The token endpoint issues bearer tokens",
    spec="AUTHZ POST /oauth2/client/token",
    group=G,
)
@requires("token_endpoint")
def token_issued(ctx: CaseContext) -> None:
    """client_credentials with the configured client_id/secret (form-encoded) returns 200 with
    access_token, token_type bearer and expires_in."""
    auth = ctx.config.auth
    assert auth.client_id
    assert auth.client_secret
    ex = ctx.client.request_token(auth.client_id, auth.client_secret)
    body = expect.success(ex, "token", allowed=(200,))
    expect.schema(ctx, "TokenResponse", body, ex, "token response")


@check(
    "DCI-AUTH-014",
    "The token endpoint refuses a wrong secret",
    spec="AUTHZ; RFC 6749 §5.2 invalid_client",
    group=G,
)
@requires("token_endpoint")
def wrong_secret(ctx: CaseContext) -> None:
    """A wrong client_secret gets HTTP 400 or 401 and no access_token."""
    assert ctx.config.auth.client_id
    ex = ctx.client.request_token(ctx.config.auth.client_id, "conformance-wrong-secret")
    expect.no_server_error(ex, "wrong secret")
    if ex.status not in (400, 401) or expect.dig(ex.response_json, "access_token"):
        ctx.fail(
            "Token for a wrong secret",
            f"Expected HTTP 400/401 without a token, got HTTP {ex.status}",
            severity=Severity.CRITICAL,
            exchange=ex,
        )


@check(
    "DCI-AUTH-015",
    "The token endpoint refuses other grant types",
    spec="AUTHZ grant_type client_credentials",
    group=G,
)
@requires("token_endpoint")
def wrong_grant(ctx: CaseContext) -> None:
    """grant_type password gets HTTP 400 (unsupported_grant_type) or 401, and no token."""
    auth = ctx.config.auth
    assert auth.client_id
    assert auth.client_secret
    ex = ctx.client.request_token(auth.client_id, auth.client_secret, grant_type="password")
    expect.no_server_error(ex, "wrong grant type")
    if ex.status not in (400, 401) or expect.dig(ex.response_json, "access_token"):
        ctx.fail(
            "Token for another grant",
            f"Expected HTTP 400/401 without a token, got HTTP {ex.status}",
            severity=Severity.HIGH,
            exchange=ex,
        )


@check(
    "DCI-AUTH-016",
    "Basic credentials are not a bearer token",
    spec="§10 (Authorization: Bearer)",
    group=G,
)
@requires("sync_search", "auth")
def basic_scheme(ctx: CaseContext) -> None:
    """`Authorization: Basic ...` instead of Bearer gets HTTP 401 or 403."""
    ex = ctx.send(
        "sync_search",
        ctx.build.missing_id_search(),
        auth="none",
        headers={"Authorization": "Basic Y29uZm9ybWFuY2U6c2VjcmV0"},
    )
    _refused(ctx, ex, "Basic scheme", (401, 403))
