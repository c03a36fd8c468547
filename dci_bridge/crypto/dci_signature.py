"""Scheme `dci-signature`: the standard's `Signature:`-style string (Beckn HTTP signature).

```
namespace="dci", kidId="{sender_id}|{key_id}|ed25519", algorithm="ed25519",
created="<unix s>", expires="<unix s>", headers="(created) (expires) digest",
signature="<base64 Ed25519 signature>"
```
The signature is Ed25519 over the three lines

```
(created): <created>
(expires): <expires>
digest: BLAKE-512=<base64 of BLAKE2b-512 of the RFC 8785 JSON of {header, message}>
```
joined by "\\n" (no trailing newline). `key_id` is a kid in the sender's JWKS; the key must be
an Ed25519 key. We emit the value without the literal `Signature:` prefix (the JSON field is
already called `signature`).

The parser is tolerant where it costs nothing (an optional leading `Signature:`, `,` or `, `
between parameters, `keyId` as an alias of `kidId`, namespace `dci` or `spdci`) and strict
everywhere else: unknown or repeated parameters, other algorithms, other `headers` lists
and non-canonical base64 are rejected, so no two different strings verify as the same
signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from dci_bridge.clock import Clock
from dci_bridge.crypto.canonical import CanonicalizationError, SignedContent
from dci_bridge.crypto.jwk import KeySet, PublicKey, SigningKey
from dci_bridge.errors import SignatureError

__all__ = [
    "DEFAULT_MAX_SKEW_S",
    "DEFAULT_TTL_S",
    "DciSignature",
    "parse_dci_signature",
    "sign_dci",
    "signing_string",
    "verify_dci",
]

DEFAULT_TTL_S: Final = 600
"""Lifetime (`expires - created`) of the signatures we make."""
DEFAULT_MAX_SKEW_S: Final = 60
"""How far in the future a received `created` may be (clock skew between systems)."""
ALGORITHM: Final = "ed25519"
HEADERS: Final = "(created) (expires) digest"
NAMESPACES: Final = frozenset({"dci", "spdci"})
MAX_CHARS: Final = 2048

_PREFIX: Final = re.compile(r"Signature:[ \t]*")
_PARAM: Final = re.compile(r'([A-Za-z]+)="([^"\\]*)"')
_SEPARATOR: Final = re.compile(r"[ \t]*,[ \t]*")
_NAMES: Final = frozenset(
    {"namespace", "kidId", "keyId", "algorithm", "created", "expires", "headers", "signature"}
)
_UNIX_TIME: Final = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class DciSignature:
    """A parsed signature value. `created`/`expires` keep their digits as sent (signed)."""

    namespace: str
    sender_id: str
    key_id: str
    created: str
    expires: str
    signature: bytes


def signing_string(created: str, expires: str, canonical: bytes) -> bytes:
    """The bytes Ed25519 signs: created, expires and the BLAKE2b-512 digest, one per line."""
    digest = base64.b64encode(hashlib.blake2b(canonical, digest_size=64).digest()).decode()
    return f"(created): {created}\n(expires): {expires}\ndigest: BLAKE-512={digest}".encode()


def sign_dci(
    content: SignedContent,
    key: SigningKey,
    *,
    sender_id: str,
    clock: Clock,
    ttl_s: int = DEFAULT_TTL_S,
    namespace: str = "dci",
) -> str:
    """Sign an envelope; `sender_id` is ours as the receiver knows us (goes into kidId)."""
    if key.alg != "EdDSA":
        raise ValueError("the dci-signature scheme needs an Ed25519 (EdDSA) signing key")
    if "|" in key.kid or '"' in sender_id or not sender_id:
        raise ValueError("sender_id and kid cannot be written into kidId")
    created = int(clock.now().timestamp())
    expires = created + ttl_s
    signature = key.sign(signing_string(str(created), str(expires), content.canonical()))
    return (
        f'namespace="{namespace}", kidId="{sender_id}|{key.kid}|{ALGORITHM}", '
        f'algorithm="{ALGORITHM}", created="{created}", expires="{expires}", '
        f'headers="{HEADERS}", signature="{base64.b64encode(signature).decode()}"'
    )


def parse_dci_signature(value: str) -> DciSignature:
    """Parse a signature value; raises `SignatureError` when anything is off."""
    if not isinstance(value, str) or len(value) > MAX_CHARS or not value.isascii():
        raise SignatureError("signature is not a valid dci-signature value")
    text = value.strip()
    prefix = _PREFIX.match(text)
    position = prefix.end() if prefix else 0
    params: dict[str, str] = {}
    while True:
        match = _PARAM.match(text, position)
        if match is None:
            raise SignatureError("signature is not a valid dci-signature value")
        name, param = match.groups()
        if name not in _NAMES:
            raise SignatureError("dci-signature has an unknown parameter")
        canonical_name = "kidId" if name == "keyId" else name
        if canonical_name in params:
            raise SignatureError("dci-signature repeats a parameter")
        params[canonical_name] = param
        position = match.end()
        if position == len(text):
            break
        separator = _SEPARATOR.match(text, position)
        if separator is None:
            raise SignatureError("signature is not a valid dci-signature value")
        position = separator.end()
    return _build(params)


def verify_dci(
    value: str,
    content: SignedContent,
    keys: KeySet,
    *,
    clock: Clock,
    max_skew_s: int = DEFAULT_MAX_SKEW_S,
) -> tuple[DciSignature, PublicKey]:
    """Verify a dci-signature against the sender's keys; returns it and the key used.

    When `keys.sender_id` is set, the sender named in kidId must be that sender.
    """
    parsed = parse_dci_signature(value)
    if keys.sender_id is not None and parsed.sender_id != keys.sender_id:
        raise SignatureError("dci-signature kidId names a different sender")
    now = int(clock.now().timestamp())
    created, expires = int(parsed.created), int(parsed.expires)
    if expires <= created:
        raise SignatureError("dci-signature expires before it was created")
    if now >= expires:
        raise SignatureError("dci-signature has expired")
    if created > now + max_skew_s:
        raise SignatureError("dci-signature is created in the future")
    key = keys.signing_key(parsed.key_id)
    if key.alg != "EdDSA":
        raise SignatureError("dci-signature key is not an Ed25519 key")
    try:
        canonical = content.canonical()
    except CanonicalizationError as exc:
        raise SignatureError(f"cannot canonicalise header and message: {exc}") from None
    if not key.verify(parsed.signature, signing_string(parsed.created, parsed.expires, canonical)):
        raise SignatureError("signature does not verify with the sender's key")
    return parsed, key


def _build(params: dict[str, str]) -> DciSignature:
    for required in ("kidId", "created", "expires", "signature"):
        if required not in params:
            raise SignatureError(f"dci-signature has no {required}")
    namespace = params.get("namespace", "dci")
    if namespace not in NAMESPACES:
        raise SignatureError("dci-signature namespace must be dci or spdci")
    if params.get("algorithm", ALGORITHM) != ALGORITHM:
        raise SignatureError("dci-signature algorithm must be ed25519")
    if params.get("headers", HEADERS) != HEADERS:
        raise SignatureError(f'dci-signature headers must be "{HEADERS}"')
    kid_parts = params["kidId"].rsplit("|", 2)
    if len(kid_parts) != 3 or not kid_parts[0] or not kid_parts[1]:
        raise SignatureError("dci-signature kidId must be sender_id|key_id|algorithm")
    sender_id, key_id, algorithm = kid_parts
    if algorithm != ALGORITHM:
        raise SignatureError("dci-signature kidId algorithm must be ed25519")
    created, expires = params["created"], params["expires"]
    if not _UNIX_TIME.fullmatch(created) or not _UNIX_TIME.fullmatch(expires):
        raise SignatureError("dci-signature created/expires must be Unix seconds")
    return DciSignature(namespace, sender_id, key_id, created, expires, _b64(params["signature"]))


def _b64(text: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("dci-signature signature is not base64") from None
    if base64.b64encode(data).decode() != text or len(data) != 64:
        raise SignatureError("dci-signature signature is not a canonical Ed25519 signature")
    return data
