"""System-client tokens as OpenCRVS's auth service issues them: RS256 JWTs, 10 minutes.

Claims (digest 1.4): `scope` list, `sub` the integration's internal id, `iss`
`opencrvs:auth-service`, `aud` the list of OpenCRVS services, `iat`, `exp`. Verification
caches decoded tokens (the simulator checks a token on every call; RSA verification is
not free), but always re-checks expiry and the revocation epoch (`expire_all`).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "opencrvs:auth-service"
AUDIENCE = [
    f"opencrvs:{name}-user"
    for name in (
        "auth",
        "user-mgnt",
        "hearth",
        "gateway",
        "notification",
        "workflow",
        "search",
        "metrics",
        "countryconfig",
        "webhooks",
        "config",
        "documents",
    )
]
_HEADER = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class Claims(msgspec.Struct, frozen=True):
    scope: list[str]
    sub: str
    iss: str
    aud: list[str]
    iat: int
    exp: int


@dataclass(frozen=True, slots=True)
class Verified:
    claims: Claims
    issued_epoch: int


class TokenIssuer:
    """Signs and checks tokens with one RSA key made at start."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cache: dict[bytes, Verified] = {}
        self._epoch = 0
        self.issued = 0
        """Tokens issued so far (two in the same second for one client are identical)."""

    @property
    def public_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def issue(self, subject: str, scopes: list[str], ttl_s: int, *, health: bool = False) -> str:
        now = int(time.time())
        aud = [*AUDIENCE, "opencrvs:notification-api-user"] if health else list(AUDIENCE)
        claims = Claims(scope=scopes, sub=subject, iss=ISSUER, aud=aud, iat=now, exp=now + ttl_s)
        signing_input = _HEADER + b"." + _b64(msgspec.json.encode(claims))
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + b"." + _b64(signature)
        self._cache[token] = Verified(claims, self._epoch)
        self.issued += 1
        return token.decode("ascii")

    def expire_all(self) -> None:
        """Make every token issued so far invalid (as if they had all expired)."""
        self._epoch += 1

    def verify(self, token: str) -> Claims | None:
        """The claims of a valid, unexpired token of ours, else None."""
        raw = token.encode("ascii", "replace")
        found = self._cache.get(raw)
        if found is None:
            found = self._check(raw)
            if found is None:
                return None
        if found.issued_epoch != self._epoch or found.claims.exp <= time.time():
            return None
        return found.claims

    def _check(self, raw: bytes) -> Verified | None:
        parts = raw.split(b".")
        if len(parts) != 3 or parts[0] != _HEADER:
            return None
        try:
            self._key.public_key().verify(
                _unb64(parts[2]), parts[0] + b"." + parts[1], padding.PKCS1v15(), hashes.SHA256()
            )
            claims = msgspec.json.decode(_unb64(parts[1]), type=Claims)
        except Exception:
            return None
        # A token of ours that is no longer cached predates a restart: treat it as revoked.
        return Verified(claims, -1)
