"""Companion APIs: the OAuth2 client-credentials token answer and the JWKS document."""

from __future__ import annotations

import msgspec

from dci_bridge.protocol.codes import KeyUse


class TokenResponse(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Answer of `POST /oauth2/client/token` (OAuth2ClientTokenResponse). The standard types
    `expires_in` as a string (`"36000"`), RFC 6749 as a number: both are read."""

    access_token: str
    token_type: str
    expires_in: str | int | None = None
    scope: str | None = None


class Jwk(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A public JSON Web Key (RFC 7517) as published in the JWKS; `kid` is the RFC 7638
    thumbprint. The key-type parameters are listed for RSA, EC and OKP keys."""

    kty: str
    kid: str
    use: KeyUse
    alg: str
    n: str | None = None
    e: str | None = None
    crv: str | None = None
    x: str | None = None
    y: str | None = None


class JwkSet(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Body of `GET /.well-known/jwks.json` (JWKSResponse)."""

    keys: list[Jwk]
