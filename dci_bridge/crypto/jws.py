"""Scheme `jws`: a compact JWS (RFC 7515) over `{"header": ..., "message": ...}`.

Signing writes `BASE64URL({"alg","kid"}).BASE64URL(payload).BASE64URL(signature)` where the
payload is the compact JSON of the signed object (built from the raw header and message
bytes when we have them: no re-serialisation). The detached form (RFC 7515 appendix F)
leaves the middle segment empty; its payload is the RFC 8785 canonical JSON of the object.

Verification never lets the token choose the key or the algorithm: the key is found by
`kid` among the sender's keys and the `alg` must be the one pinned on that key. Anything
malformed (`alg: none`, `crit`, `b64: false`, non-canonical base64url, a foreign kid) is a
`SignatureError` whose message names the problem and never a value from the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, NamedTuple

import msgspec

from dci_bridge.crypto.canonical import (
    CanonicalizationError,
    SignedContent,
    b64url_decode,
    b64url_encode,
)
from dci_bridge.crypto.jwk import JWS_ALG_NAMES, KeySet, PublicKey, SigningKey
from dci_bridge.errors import SignatureError

__all__ = [
    "ParsedJws",
    "parse_compact",
    "sign_compact",
    "sign_envelope_jws",
    "verify_compact",
    "verify_envelope_jws",
]

MAX_HEADER_CHARS: Final = 4096
_HEADER_DECODER: Final = msgspec.json.Decoder(dict[str, Any])

JwsForm = Literal["jws", "jws-detached"]


class ParsedJws(NamedTuple):
    """A compact JWS split and decoded; `payload` is None for the detached form."""

    header: dict[str, Any]
    header_b64: str
    payload_b64: str
    payload: bytes | None
    signature: bytes

    @property
    def kid(self) -> str:
        return str(self.header["kid"])


def sign_compact(
    payload: bytes,
    key: SigningKey,
    *,
    detached: bool = False,
    header: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS of `payload`; `header` adds members (e.g. `typ`) to alg and kid."""
    if header:
        header_b64 = b64url_encode(msgspec.json.encode({"alg": key.alg, "kid": key.kid, **header}))
    else:
        header_b64 = key.jws_header_b64
    payload_b64 = b64url_encode(payload)
    signature = key.sign(f"{header_b64}.{payload_b64}".encode("ascii"))
    shown = "" if detached else payload_b64
    return f"{header_b64}.{shown}.{b64url_encode(signature)}"


def parse_compact(token: str) -> ParsedJws:
    """Split and decode a compact JWS strictly; raises `SignatureError` when malformed."""
    if not isinstance(token, str) or not token.isascii():
        raise SignatureError("signature is not a compact JWS")
    parts = token.split(".")
    if len(parts) != 3:
        raise SignatureError("signature is not a compact JWS")
    header_b64, payload_b64, signature_b64 = parts
    if not header_b64 or not signature_b64 or len(header_b64) > MAX_HEADER_CHARS:
        raise SignatureError("signature is not a compact JWS")
    try:
        header_bytes = b64url_decode(header_b64)
        payload = b64url_decode(payload_b64) if payload_b64 else None
        signature = b64url_decode(signature_b64)
    except ValueError:
        raise SignatureError("JWS segments are not canonical base64url") from None
    if payload == b"":
        raise SignatureError("JWS payload is empty")
    try:
        header = _HEADER_DECODER.decode(header_bytes)
    except (msgspec.DecodeError, ValueError):
        raise SignatureError("JWS header is not a JSON object") from None
    _check_header(header)
    return ParsedJws(header, header_b64, payload_b64, payload, signature)


def verify_compact(
    parsed: ParsedJws, keys: KeySet, *, detached_payload_b64: str | None = None
) -> PublicKey:
    """Check the signature with the sender's key named by `kid`; returns that key.

    For the detached form pass the base64url of the payload that was signed.
    Raises `SignatureError` (`UnknownKeyError` for a kid the keys do not have).
    """
    key = keys.signing_key(parsed.kid)
    if parsed.header["alg"] not in JWS_ALG_NAMES[key.alg]:
        raise SignatureError("JWS alg does not match the algorithm of the signing key")
    payload_b64 = parsed.payload_b64 if parsed.payload is not None else detached_payload_b64
    if payload_b64 is None:
        raise SignatureError("detached JWS needs the signed payload")
    signing_input = f"{parsed.header_b64}.{payload_b64}".encode("ascii")
    if not key.verify(parsed.signature, signing_input):
        raise SignatureError("signature does not verify with the sender's key")
    return key


def sign_envelope_jws(content: SignedContent, key: SigningKey, *, detached: bool = False) -> str:
    """Sign an envelope: attached over its compact JSON, detached over its canonical JSON."""
    if detached:
        return sign_compact(content.canonical(), key, detached=True)
    return sign_compact(content.json(), key)


def verify_envelope_jws(
    token: str, content: SignedContent, keys: KeySet, *, parsed: ParsedJws | None = None
) -> tuple[JwsForm, PublicKey]:
    """Verify an envelope's JWS in either form; returns the form and the key that signed.
    `parsed`: `parse_compact(token)`, when the caller has it already."""
    if parsed is None:
        parsed = parse_compact(token)
    if parsed.payload is None:
        try:
            canonical = content.canonical()
        except CanonicalizationError as exc:
            raise SignatureError(f"cannot canonicalise header and message: {exc}") from None
        key = verify_compact(parsed, keys, detached_payload_b64=b64url_encode(canonical))
        return "jws-detached", key
    key = verify_compact(parsed, keys)
    try:
        same = content.matches_json(parsed.payload)
    except CanonicalizationError:
        same = False
    if not same:
        raise SignatureError("signed payload does not match the header and message")
    return "jws", key


def _check_header(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise SignatureError("JWS header has no alg")
    if alg.lower() == "none":
        raise SignatureError("JWS alg none is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureError("JWS header has no kid")
    if "crit" in header:
        raise SignatureError("JWS header has critical extensions we do not support")
    if header.get("b64", True) is not True:
        raise SignatureError("unencoded JWS payloads (b64: false) are not accepted")
