"""The tester's keys, signing of outgoing envelopes, and verification of the target's.

Two signature schemes (DESIGN.md §7, spec digest §8):
- `jws`: compact JWS whose payload is the JSON of `{"header": ..., "message": ...}`, protected
  header `alg` + `kid` (RFC 7638 thumbprint). Verification accepts the attached form (payload
  equals the envelope's header and message) and the detached form (RFC 7515 appendix F,
  payload = RFC 8785 canonical JSON of the same object).
- `dci-signature`: `Signature: namespace="dci", kidId="{sender_id}|{kid}|ed25519", ...` with an
  Ed25519 signature over `(created)`, `(expires)` and `digest: BLAKE-512=<b64 BLAKE2b-512 of the
  canonical JSON>`, joined by newlines (the Beckn scheme the standard's example follows).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

KEY_TYPES: dict[str, dict[str, str]] = {
    "Ed25519": {"kty": "OKP", "crv": "Ed25519"},
    "ES256": {"kty": "EC", "crv": "P-256"},
    "RS256": {"kty": "RSA", "size": "2048"},
}
JWS_ALG = {"Ed25519": "EdDSA", "ES256": "ES256", "RS256": "RS256"}
_ALLOWED_JWS_ALGS = frozenset({"EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256"})


class SignatureProblem(Exception):
    """A signature is missing, malformed or does not verify; the message says which."""


@dataclass
class TesterKeys:
    """The tester's signing key, its thumbprint kid and JWS algorithm."""

    __test__ = False  # not a pytest test class despite the name

    key: jwk.JWK
    key_type: str

    @property
    def kid(self) -> str:
        return str(self.key.thumbprint())

    @property
    def alg(self) -> str:
        return JWS_ALG[self.key_type]

    @classmethod
    def generate(cls, key_type: str = "Ed25519") -> TesterKeys:
        params: dict[str, Any] = dict(KEY_TYPES[key_type])
        if "size" in params:
            params["size"] = int(params["size"])
        return cls(jwk.JWK.generate(**params), key_type)

    @classmethod
    def from_file(cls, path: str | Path) -> TesterKeys:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        key = jwk.JWK(**data)
        kty, crv = data.get("kty"), data.get("crv")
        key_type = "Ed25519" if kty == "OKP" else "ES256" if kty == "EC" else "RS256"
        if kty == "OKP" and crv != "Ed25519":
            raise ValueError(f"unsupported OKP curve {crv!r}")
        return cls(key, key_type)

    def private_json(self) -> str:
        data = json.loads(self.key.export_private())
        data.update(kid=self.kid, alg=self.alg, use="sig")
        return json.dumps(data, indent=2, sort_keys=True)

    def public_jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.key.export_public())
        data.update(kid=self.kid, alg=self.alg, use="sig")
        return data

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def signed_payload(header: Any, message: Any) -> bytes:
    """The JSON of `{header, message}` as the `jws` scheme signs it (attached form)."""
    return json.dumps({"header": header, "message": message}, separators=(",", ":")).encode()


def canonical_payload(header: Any, message: Any) -> bytes:
    """RFC 8785 canonical JSON of `{header, message}` (detached JWS, dci-signature digest)."""
    return rfc8785.dumps({"header": header, "message": message})


def sign_jws(keys: TesterKeys, header: Any, message: Any) -> str:
    token = jws.JWS(signed_payload(header, message))
    protected = json.dumps({"alg": keys.alg, "kid": keys.kid})
    token.add_signature(keys.key, alg=keys.alg, protected=protected)
    return str(token.serialize(compact=True))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _signing_string(created: int, expires: int, header: Any, message: Any) -> bytes:
    digest = _b64(hashlib.blake2b(canonical_payload(header, message), digest_size=64).digest())
    return f"(created): {created}\n(expires): {expires}\ndigest: BLAKE-512={digest}".encode()


def sign_dci(
    keys: TesterKeys,
    sender_id: str,
    header: Any,
    message: Any,
    *,
    created: int | None = None,
    ttl_s: int = 300,
) -> str:
    """The standard's `Signature:` string (Ed25519 only, as the scheme defines it)."""
    if keys.key_type != "Ed25519":
        raise ValueError("the dci-signature scheme needs an Ed25519 key")
    created = int(time.time()) if created is None else created
    expires = created + ttl_s
    private = keys.key.get_op_key("sign")
    assert isinstance(private, Ed25519PrivateKey)
    signature = _b64(private.sign(_signing_string(created, expires, header, message)))
    return (
        f'Signature: namespace="dci", kidId="{sender_id}|{keys.kid}|ed25519", '
        f'algorithm="ed25519", created="{created}", expires="{expires}", '
        f'headers="(created) (expires) digest", signature="{signature}"'
    )


def sign_envelope(
    keys: TesterKeys, scheme: str, sender_id: str, envelope: dict[str, Any]
) -> dict[str, Any]:
    """A copy of the envelope with `signature` set by `scheme` ("none" removes it)."""
    out = {k: v for k, v in envelope.items() if k != "signature"}
    header, message = envelope.get("header"), envelope.get("message")
    if scheme == "jws":
        out = {"signature": sign_jws(keys, header, message), **out}
    elif scheme == "dci-signature":
        out = {"signature": sign_dci(keys, sender_id, header, message), **out}
    return out


_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*,?')


def parse_dci_signature(value: str) -> dict[str, str]:
    text = value.strip()
    if text.lower().startswith("signature:"):
        text = text[len("signature:") :]
    params: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if not match:
            raise SignatureProblem(
                f"cannot parse the Signature string near {text[pos : pos + 30]!r}"
            )
        params[match.group(1)] = match.group(2)
        pos = match.end()
    return params


class JwksVerifier:
    """Verifies envelopes against a JWKS document (the target's published keys)."""

    def __init__(self, jwks: dict[str, Any], *, now: float | None = None) -> None:
        self.jwks = jwks
        self._now = now
        self._keys: dict[str, jwk.JWK] = {}
        for item in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            if isinstance(item, dict) and isinstance(item.get("kid"), str):
                try:
                    self._keys[item["kid"]] = jwk.JWK(**item)
                except (JWException, ValueError, TypeError):
                    continue

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def verify(self, envelope: Any) -> str:
        """Raise SignatureProblem unless the envelope's signature verifies; return the scheme."""
        if not isinstance(envelope, dict):
            raise SignatureProblem("the body is not a JSON object")
        signature = envelope.get("signature")
        if signature in (None, ""):
            raise SignatureProblem("Expected a `signature`, got none at $.signature")
        if not isinstance(signature, str):
            raise SignatureProblem(
                f"Expected a string, got {type(signature).__name__} at $.signature"
            )
        header, message = envelope.get("header"), envelope.get("message")
        if signature.count(".") == 2 and " " not in signature:
            self._verify_jws(signature, header, message)
            return "jws"
        self._verify_dci(signature, header, message)
        return "dci-signature"

    def _key(self, kid: str | None) -> jwk.JWK:
        if not kid:
            raise SignatureProblem("the signature names no key id (kid)")
        if kid not in self._keys:
            raise SignatureProblem(
                f"Expected a kid published in the JWKS ({', '.join(self.kids) or 'none'}), "
                f"got {kid!r}"
            )
        return self._keys[kid]

    def _verify_jws(self, token: str, header: Any, message: Any) -> None:
        try:
            parsed = jws.JWS()
            parsed.deserialize(token)
            protected = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        except (JWException, ValueError) as exc:
            raise SignatureProblem(f"malformed compact JWS: {exc}") from exc
        alg = protected.get("alg")
        if alg not in _ALLOWED_JWS_ALGS:
            raise SignatureProblem(f"Expected an asymmetric JWS alg, got {alg!r}")
        key = self._key(protected.get("kid"))
        detached = token.split(".")[1] == ""
        try:
            if detached:
                parsed.verify(key, alg=alg, detached_payload=canonical_payload(header, message))
                return
            parsed.verify(key, alg=alg)
        except JWException as exc:
            raise SignatureProblem(
                f"JWS does not verify with key {key.thumbprint()}: {exc}"
            ) from exc
        try:
            payload = json.loads(parsed.payload)
        except ValueError as exc:
            raise SignatureProblem("the JWS payload is not JSON") from exc
        if payload != {"header": header, "message": message}:
            raise SignatureProblem(
                "Expected the JWS payload to equal {header, message} of the envelope, got a "
                "different object (the envelope was altered after signing)"
            )

    def _verify_dci(self, value: str, header: Any, message: Any) -> None:
        params = parse_dci_signature(value)
        key_id = params.get("kidId") or params.get("keyId") or ""
        parts = key_id.split("|")
        if len(parts) != 3:
            raise SignatureProblem(f"Expected kidId `sender|key|alg`, got {key_id!r}")
        if params.get("algorithm", parts[2]).lower() != "ed25519":
            raise SignatureProblem(f"Expected algorithm ed25519, got {params.get('algorithm')!r}")
        try:
            created, expires = int(params["created"]), int(params["expires"])
            raw = base64.b64decode(params["signature"], validate=True)
        except (KeyError, ValueError) as exc:
            raise SignatureProblem(f"Signature string lacks or garbles {exc}") from exc
        now = time.time() if self._now is None else self._now
        if expires < now:
            raise SignatureProblem(f"Expected an unexpired signature, got expires={expires}")
        public = self._key(parts[1]).get_op_key("verify")
        if not isinstance(public, Ed25519PublicKey):
            raise SignatureProblem("the kid names a key that is not Ed25519")
        try:
            public.verify(raw, _signing_string(created, expires, header, message))
        except InvalidSignature as exc:
            raise SignatureProblem("the Ed25519 signature does not verify") from exc


def decode_jwt_claims(token: str) -> dict[str, Any] | None:
    """The unverified claims of a JWT, or None when it is not one (used to forge variants)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """An `alg: none` JWT with these claims: a registry must never accept it."""

    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}."


def self_signed_jwt(keys: TesterKeys, claims: dict[str, Any]) -> str:
    """A JWT signed by the tester's own key (not the registry's): must be refused."""
    token = jws.JWS(json.dumps(claims).encode())
    token.add_signature(
        keys.key, alg=keys.alg, protected=json.dumps({"alg": keys.alg, "typ": "JWT"})
    )
    return str(token.serialize(compact=True))
