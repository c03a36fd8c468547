"""OAuth2 client credentials (AUTHZ): client secrets and the bridge's short-lived access tokens.

Client secrets are stored as salted scrypt hashes (`scrypt$n$r$p$salt$hash`), compared in
constant time. Access tokens are JWTs (RFC 9068 `typ: at+jwt`) signed by the bridge's
current key; they are checked on every request, so `AccessTokenVerifier` keeps verified
tokens in a small cache and the keys come parsed from the `KeyStore`.

Scopes (space-separated in the `scope` claim and in the token request):

| scope                 | grants                                                           |
|-----------------------|------------------------------------------------------------------|
| `registry.search`     | /registry/search, /registry/sync/search                          |
| `registry.subscribe`  | /registry/subscribe, /registry/unsubscribe                       |
| `registry.txn-status` | /registry/txn/status, /registry/sync/txn/status                  |
| `registry.admin`      | operator endpoints (replays, deliveries)                         |

Token failures (missing, malformed, bad signature, `alg: none`, expired, wrong issuer or
audience) raise `UnauthorizedError` (HTTP 401); a valid token without the needed scope
raises `ForbiddenError` (HTTP 403). Messages name the check, never the token's content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import msgspec

from dci_bridge.clock import Clock
from dci_bridge.crypto.jwk import KeySet, SigningKey
from dci_bridge.crypto.jws import parse_compact, sign_compact, verify_compact
from dci_bridge.crypto.keys import KeyStore
from dci_bridge.errors import ForbiddenError, SignatureError, UnauthorizedError

__all__ = [
    "DEFAULT_TOKEN_TTL_S",
    "SCOPES",
    "AccessTokenVerifier",
    "TokenClaims",
    "bearer_token",
    "generate_secret",
    "grant_scopes",
    "hash_secret",
    "issue_access_token",
    "verify_access_token",
    "verify_secret",
]

SCOPE_SEARCH: Final = "registry.search"
SCOPE_SUBSCRIBE: Final = "registry.subscribe"
SCOPE_TXN_STATUS: Final = "registry.txn-status"
SCOPE_ADMIN: Final = "registry.admin"
SCOPES: Final[tuple[str, ...]] = (SCOPE_SEARCH, SCOPE_SUBSCRIBE, SCOPE_TXN_STATUS, SCOPE_ADMIN)

DEFAULT_TOKEN_TTL_S: Final = 900
DEFAULT_LEEWAY_S: Final = 30
TOKEN_TYPE: Final = "at+jwt"  # noqa: S105  (a media type, not a secret)
_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_CHARS: Final = 4096

# scrypt: 16 MiB of memory and ~40 ms per hash here; the token endpoint is not a hot path.
_SCRYPT_N: Final = 2**14
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SCRYPT_MAX_N: Final = 2**20
_SCRYPT_MAXMEM: Final = 1024 * 1024 * 1024


class _Claims(msgspec.Struct, frozen=True):
    iss: str
    sub: str
    aud: str | list[str]
    exp: int
    iat: int
    scope: str = ""
    jti: str = ""
    nbf: int | None = None


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified access token says."""

    client_id: str
    scopes: frozenset[str]
    issued_at: int
    expires_at: int
    token_id: str
    key_id: str

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


# --- client secrets -------------------------------------------------------------------------


def generate_secret() -> str:
    """A new client secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Salted scrypt hash of a client secret, self-describing: `scrypt$n$r$p$salt$hash`."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, hashed: str) -> bool:
    """Whether `secret` matches a `hash_secret` value; False for malformed hashes."""
    try:
        scheme, n_text, r_text, p_text, salt_text, digest_text = hashed.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt, expected = _unb64(salt_text), _unb64(digest_text)
    except (ValueError, binascii.Error):
        return False
    if scheme != "scrypt" or not (1 < n <= _SCRYPT_MAX_N) or not (0 < r <= 32 and 0 < p <= 16):
        return False
    if not 16 <= len(expected) <= 64:
        return False
    try:
        actual = _scrypt(secret, salt, n, r, p, length=len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def grant_scopes(requested: str | None, allowed: Iterable[str]) -> tuple[str, ...]:
    """Scopes for a token request: all allowed ones when none are asked for, else exactly
    the requested ones; raises `ForbiddenError` for a scope the client may not have."""
    permitted = tuple(dict.fromkeys(allowed))
    if requested is None or not requested.strip():
        return permitted
    wanted = tuple(dict.fromkeys(requested.split()))
    for scope in wanted:
        if scope not in permitted:
            known = scope in SCOPES
            detail = f"scope {scope} is not granted to this client" if known else "unknown scope"
            raise ForbiddenError(detail)
    return wanted


# --- access tokens --------------------------------------------------------------------------


def issue_access_token(
    client_id: str,
    scopes: Iterable[str],
    *,
    key: SigningKey,
    issuer: str,
    audience: str,
    ttl_s: int = DEFAULT_TOKEN_TTL_S,
    clock: Clock,
) -> tuple[str, int]:
    """A signed access token for a client and its `expires_in` in seconds."""
    now, ttl_s = int(clock.now().timestamp()), int(ttl_s)
    claims = {
        "iss": issuer,
        "sub": client_id,
        "aud": audience,
        "client_id": client_id,
        "scope": " ".join(dict.fromkeys(scopes)),
        "iat": now,
        "exp": now + ttl_s,
        "jti": secrets.token_urlsafe(12),
    }
    token = sign_compact(msgspec.json.encode(claims), key, header={"typ": TOKEN_TYPE})
    return token, ttl_s


def verify_access_token(
    token: str | None,
    *,
    keys: KeySet,
    issuer: str,
    audience: str,
    clock: Clock,
    required_scope: str | None = None,
    leeway_s: int = DEFAULT_LEEWAY_S,
) -> TokenClaims:
    """Check an access token; raises `UnauthorizedError`, or `ForbiddenError` for a
    missing `required_scope`."""
    claims = _verify(token, keys, issuer, audience, int(clock.now().timestamp()), leeway_s)
    _require_scope(claims, required_scope)
    return claims


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; raises `UnauthorizedError`."""
    if not authorization:
        raise UnauthorizedError("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise UnauthorizedError("the Authorization header is not a bearer token")
    return token


class AccessTokenVerifier:
    """`verify_access_token` with the bridge's keys and a cache of verified tokens.

    A cached token is still checked for expiry, for its key still being published and
    for the scope; only the signature and claim parsing are skipped.
    """

    def __init__(
        self,
        keys: KeyStore | KeySet | Callable[[], KeySet],
        *,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway_s: int = DEFAULT_LEEWAY_S,
        cache_size: int = 1024,
    ) -> None:
        if isinstance(keys, KeyStore):
            self._keys: Callable[[], KeySet] = keys.verification_keys
        elif isinstance(keys, KeySet):
            fixed = keys
            self._keys = lambda: fixed
        else:
            self._keys = keys
        self.issuer, self.audience, self.clock = issuer, audience, clock
        self.leeway_s = leeway_s
        self._cache: dict[str, TokenClaims] = {}
        self._cache_size = cache_size

    def verify(self, token: str | None, required_scope: str | None = None) -> TokenClaims:
        now = int(self.clock.now().timestamp())
        keys = self._keys()
        claims = self._cache.get(token) if token else None
        if claims is None or claims.key_id not in keys:
            claims = _verify(token, keys, self.issuer, self.audience, now, self.leeway_s)
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)), None)
            assert token is not None
            self._cache[token] = claims
        elif now >= claims.expires_at + self.leeway_s:
            self._cache.pop(token, None)  # type: ignore[arg-type]
            raise UnauthorizedError("the access token has expired")
        _require_scope(claims, required_scope)
        return claims


def _verify(
    token: str | None, keys: KeySet, issuer: str, audience: str, now: int, leeway_s: int
) -> TokenClaims:
    if not token:
        raise UnauthorizedError("missing bearer token")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise UnauthorizedError("the access token is malformed")
    try:
        parsed = parse_compact(token)
        if parsed.payload is None or parsed.header.get("typ") not in _TOKEN_TYPES:
            raise UnauthorizedError("the bearer token is not an access token of this service")
        key = verify_compact(parsed, keys)
    except SignatureError as exc:
        raise UnauthorizedError(f"the access token is invalid: {exc.message}") from None
    try:
        claims = msgspec.json.decode(parsed.payload, type=_Claims)
    except (msgspec.DecodeError, ValueError):  # invalid UTF-8 is a UnicodeDecodeError
        raise UnauthorizedError("the access token claims are malformed") from None
    if not hmac.compare_digest(claims.iss, issuer):
        raise UnauthorizedError("the access token has the wrong issuer")
    audiences = [claims.aud] if isinstance(claims.aud, str) else claims.aud
    if audience not in audiences:
        raise UnauthorizedError("the access token is not meant for this service")
    if now >= claims.exp + leeway_s:
        raise UnauthorizedError("the access token has expired")
    if claims.iat > now + leeway_s or (claims.nbf is not None and claims.nbf > now + leeway_s):
        raise UnauthorizedError("the access token is not valid yet")
    return TokenClaims(
        client_id=claims.sub,
        scopes=frozenset(claims.scope.split()),
        issued_at=claims.iat,
        expires_at=claims.exp,
        token_id=claims.jti,
        key_id=key.kid,
    )


def _require_scope(claims: TokenClaims, scope: str | None) -> None:
    if scope is not None and scope not in claims.scopes:
        raise ForbiddenError(f"the access token lacks the {scope} scope")


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int = 32) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_SCRYPT_MAXMEM
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text:
        raise ValueError("empty")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
