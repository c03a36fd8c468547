"""OAuth2 client credentials: secret hashing, access tokens, scopes, the cached verifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dci_bridge.clock import FixedClock
from dci_bridge.crypto import jws
from dci_bridge.crypto.canonical import b64url_decode, b64url_encode
from dci_bridge.crypto.jwk import SigningKey
from dci_bridge.crypto.keys import DEFAULT_OVERLAP_S, KeyStore
from dci_bridge.crypto.tokens import (
    SCOPES,
    AccessTokenVerifier,
    bearer_token,
    generate_secret,
    grant_scopes,
    hash_secret,
    issue_access_token,
    verify_access_token,
    verify_secret,
)
from dci_bridge.errors import ForbiddenError, UnauthorizedError
from tests.unit.crypto.crypto_support import keyset_of

ISSUER = "https://crvs.example.org"
AUDIENCE = "crvs.example.org"


def issue(key: SigningKey, clock: FixedClock, **kwargs: Any) -> str:
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "ttl_s": 300, **kwargs}
    token, _ = issue_access_token("client-1", ["registry.search"], key=key, clock=clock, **options)
    return token


def check(token: str | None, key: SigningKey, clock: FixedClock, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, **kwargs}
    return verify_access_token(token, keys=keyset_of(key), clock=clock, **options)


# --- secrets --------------------------------------------------------------------------------


def test_secret_hash_verifies_only_the_same_secret() -> None:
    secret = generate_secret()
    hashed = hash_secret(secret)
    assert hashed.startswith("scrypt$16384$8$1$")
    assert secret not in hashed
    assert verify_secret(secret, hashed)
    assert not verify_secret(secret + "x", hashed)
    assert not verify_secret("", hashed)


def test_secret_hashes_are_salted() -> None:
    assert hash_secret("same") != hash_secret("same")


@pytest.mark.parametrize(
    "hashed",
    [
        "",
        "plain",
        "bcrypt$16384$8$1$c2FsdA$aGFzaA",
        "scrypt$x$8$1$c2FsdA$aGFzaA",
        "scrypt$1$8$1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$2097152$8$1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",  # too costly to ever try
        "scrypt$16384$8$1$c2FsdA$aGFzaA",  # digest too short
        "scrypt$16384$8$1$!!$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_malformed_hashes_never_verify(hashed: str) -> None:
    assert verify_secret("secret", hashed) is False


def test_secrets_are_long_and_unique() -> None:
    secrets = {generate_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 43 for s in secrets)


# --- scopes ---------------------------------------------------------------------------------


def test_documented_scopes() -> None:
    assert SCOPES == (
        "registry.search",
        "registry.subscribe",
        "registry.txn-status",
        "registry.admin",
    )


def test_grant_scopes() -> None:
    allowed = ["registry.search", "registry.txn-status"]
    assert grant_scopes(None, allowed) == ("registry.search", "registry.txn-status")
    assert grant_scopes(" ", allowed) == ("registry.search", "registry.txn-status")
    assert grant_scopes("registry.search registry.search", allowed) == ("registry.search",)
    with pytest.raises(ForbiddenError, match=r"registry\.subscribe is not granted"):
        grant_scopes("registry.search registry.subscribe", allowed)
    with pytest.raises(ForbiddenError, match="unknown scope"):
        grant_scopes("launch.missiles", allowed)


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_issued_token_verifies(
    keys_by_alg: dict[str, SigningKey], clock: FixedClock, alg: str
) -> None:
    key = keys_by_alg[alg]
    token, expires_in = issue_access_token(
        "client-1",
        ["registry.search", "registry.subscribe"],
        key=key,
        issuer=ISSUER,
        audience=AUDIENCE,
        ttl_s=300,
        clock=clock,
    )
    assert expires_in == 300
    claims = check(token, key, clock, required_scope="registry.subscribe")
    assert claims.client_id == "client-1"
    assert claims.scopes == {"registry.search", "registry.subscribe"}
    assert claims.expires_at - claims.issued_at == 300
    assert claims.key_id == key.kid
    assert claims.has_scope("registry.search")


def test_token_is_an_at_jwt_with_standard_claims(ed_key: SigningKey, clock: FixedClock) -> None:
    token = issue(ed_key, clock)
    header_b64, payload_b64, _ = token.split(".")
    assert json.loads(b64url_decode(header_b64)) == {
        "alg": "EdDSA",
        "kid": ed_key.kid,
        "typ": "at+jwt",
    }
    claims = json.loads(b64url_decode(payload_b64))
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == "client-1"
    assert claims["scope"] == "registry.search"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token_is_unauthorized(ed_key: SigningKey, clock: FixedClock, token: Any) -> None:
    with pytest.raises(UnauthorizedError, match="missing") as caught:
        check(token, ed_key, clock)
    assert caught.value.http_status == 401


def test_expired_token_is_unauthorized(ed_key: SigningKey, clock: FixedClock) -> None:
    token = issue(ed_key, clock)
    clock.advance(300 + 29)  # 30 s leeway
    assert check(token, ed_key, clock)
    clock.advance(1)
    with pytest.raises(UnauthorizedError, match="expired"):
        check(token, ed_key, clock)


def test_token_from_the_future_is_unauthorized(ed_key: SigningKey, clock: FixedClock) -> None:
    token = issue(ed_key, clock)
    clock.advance(-31)
    with pytest.raises(UnauthorizedError, match="not valid yet"):
        check(token, ed_key, clock)


def test_wrong_audience_or_issuer_is_unauthorized(ed_key: SigningKey, clock: FixedClock) -> None:
    with pytest.raises(UnauthorizedError, match="not meant for this service"):
        check(issue(ed_key, clock, audience="other.example.org"), ed_key, clock)
    with pytest.raises(UnauthorizedError, match="wrong issuer"):
        check(issue(ed_key, clock, issuer="https://evil.example.org"), ed_key, clock)


def test_audience_lists_are_accepted(ed_key: SigningKey, clock: FixedClock) -> None:
    claims = {
        "iss": ISSUER,
        "sub": "c",
        "aud": ["x", AUDIENCE],
        "iat": 1748779200,
        "exp": 1748779500,
    }
    token = jws.sign_compact(json.dumps(claims).encode(), ed_key, header={"typ": "at+jwt"})
    assert check(token, ed_key, clock).client_id == "c"


def test_missing_scope_is_forbidden(ed_key: SigningKey, clock: FixedClock) -> None:
    with pytest.raises(ForbiddenError, match=r"registry\.subscribe") as caught:
        check(issue(ed_key, clock), ed_key, clock, required_scope="registry.subscribe")
    assert caught.value.http_status == 403


def test_token_signed_by_another_key_is_unauthorized(
    ed_key: SigningKey, other_keys_by_alg: dict[str, SigningKey], clock: FixedClock
) -> None:
    with pytest.raises(UnauthorizedError, match="unknown key id"):
        check(issue(other_keys_by_alg["EdDSA"], clock), ed_key, clock)
    _, payload, signature = issue(other_keys_by_alg["EdDSA"], clock).split(".")
    ours = issue(ed_key, clock).split(".")[0]
    with pytest.raises(UnauthorizedError, match="does not verify"):
        check(f"{ours}.{payload}.{signature}", ed_key, clock)


def test_alg_none_token_is_unauthorized(ed_key: SigningKey, clock: FixedClock) -> None:
    _, payload, _ = issue(ed_key, clock).split(".")
    header = b64url_encode(json.dumps({"alg": "none", "kid": ed_key.kid, "typ": "at+jwt"}).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.AAAA"):
        with pytest.raises(UnauthorizedError):
            check(token, ed_key, clock)


def test_tampered_claims_are_unauthorized(ed_key: SigningKey, clock: FixedClock) -> None:
    header, payload, signature = issue(ed_key, clock).split(".")
    claims = json.loads(b64url_decode(payload))
    claims["scope"] = "registry.search registry.admin"
    forged = b64url_encode(json.dumps(claims).encode())
    with pytest.raises(UnauthorizedError, match="does not verify"):
        check(f"{header}.{forged}.{signature}", ed_key, clock)


def test_signed_things_that_are_not_access_tokens_are_unauthorized(
    ed_key: SigningKey, clock: FixedClock
) -> None:
    # an envelope signature made with our key is not a token (no typ)
    envelope_jws = jws.sign_compact(b'{"header":{},"message":{}}', ed_key)
    with pytest.raises(UnauthorizedError, match="not an access token"):
        check(envelope_jws, ed_key, clock)
    wrong_claims = jws.sign_compact(b'{"sub": 5}', ed_key, header={"typ": "at+jwt"})
    with pytest.raises(UnauthorizedError, match="claims are malformed"):
        check(wrong_claims, ed_key, clock)
    with pytest.raises(UnauthorizedError, match="malformed"):
        check("x" * 5000, ed_key, clock)


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer   abc ") == "abc"
    for header in [None, "", "Basic abc", "Bearer", "Bearer a b"]:
        with pytest.raises(UnauthorizedError):
            bearer_token(header)


# --- the cached verifier --------------------------------------------------------------------


def test_verifier_caches_but_still_checks_expiry_scope_and_key(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KeyStore(tmp_path / "keys", clock=clock, overlap_s=DEFAULT_OVERLAP_S)
    verifier = AccessTokenVerifier(store, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    token = issue(store.current, clock)
    assert verifier.verify(token, "registry.search").client_id == "client-1"

    calls: list[str] = []
    real = jws.verify_compact
    monkeypatch.setattr(
        "dci_bridge.crypto.tokens.verify_compact",
        lambda *a, **k: calls.append("x") or real(*a, **k),
    )
    assert verifier.verify(token, "registry.search").client_id == "client-1"
    assert calls == []  # served from the cache
    with pytest.raises(ForbiddenError):
        verifier.verify(token, "registry.admin")

    store.rotate()
    assert verifier.verify(token).client_id == "client-1"  # old key still published
    clock.advance(DEFAULT_OVERLAP_S)
    fresh = issue(store.current, clock, ttl_s=10 * DEFAULT_OVERLAP_S)
    assert verifier.verify(fresh)
    with pytest.raises(UnauthorizedError):
        verifier.verify(token)  # expired, and its key is gone


def test_verifier_expires_cached_tokens(ed_key: SigningKey, clock: FixedClock) -> None:
    verifier = AccessTokenVerifier(keyset_of(ed_key), issuer=ISSUER, audience=AUDIENCE, clock=clock)
    token = issue(ed_key, clock)
    verifier.verify(token)
    clock.advance(330)
    with pytest.raises(UnauthorizedError, match="expired"):
        verifier.verify(token)
    with pytest.raises(UnauthorizedError, match="missing"):
        verifier.verify(None)


def test_verifier_cache_is_bounded(ed_key: SigningKey, clock: FixedClock) -> None:
    verifier = AccessTokenVerifier(
        lambda: keyset_of(ed_key), issuer=ISSUER, audience=AUDIENCE, clock=clock, cache_size=3
    )
    for _ in range(10):
        verifier.verify(issue(ed_key, clock))
    assert len(verifier._cache) == 3
