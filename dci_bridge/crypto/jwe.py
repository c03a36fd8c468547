"""`EncryptedMessage`: the standard's JWE, `{header: {alg, enc, kid}, encrypted_key, iv,
ciphertext, tag}`, over the JSON of the message object.

Algorithms: key transport `RSA-OAEP-256` (our published `enc` key; `RSA-OAEP` is accepted
for a receiver whose key asks for it), content encryption `A256GCM` (A128GCM and A192GCM
also decrypt). This is what opencrvs/dci-crvs-api produces and reads (jose
`FlattenedEncrypt` with an unprotected header).

Binding of alg/enc/kid: the standard's object has no protected header, so `header` is the
JWE per-recipient *unprotected* header and the AEAD's additional data is empty (RFC 7516
5.1 step 14 with no protected header). Nothing in it can weaken decryption because every
value is pinned on our side: `kid` must name one of our keys, `alg` must be that key's
algorithm, `enc` must be an AES-GCM we accept, `zip` and `crit` are refused. Integrity of the
whole object (header included) comes from the envelope signature, which is computed over
the encrypted message. A full JOSE flattened JWE (`protected`, `unprotected`, `aad`) is
also accepted on input; we always emit the standard's shape.

Bounds: the ciphertext is size-checked before decoding, and there is no decompression.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dci_bridge.crypto.canonical import JsonInput, b64url_decode, b64url_encode
from dci_bridge.crypto.jwk import DecryptionKey, PublicKey
from dci_bridge.crypto.keys import KeyStore
from dci_bridge.errors import EncryptionError

__all__ = [
    "CONTENT_ENCRYPTIONS",
    "DEFAULT_MAX_CIPHERTEXT_BYTES",
    "decrypt_message",
    "encrypt_message",
]

DEFAULT_ENC: Final = "A256GCM"
CONTENT_ENCRYPTIONS: Final[Mapping[str, int]] = {"A128GCM": 16, "A192GCM": 24, "A256GCM": 32}
DEFAULT_MAX_CIPHERTEXT_BYTES: Final = 1_048_576
"""Largest ciphertext we decrypt (the plaintext is the same size: GCM, no compression)."""
_IV_BYTES: Final = 12
_TAG_BYTES: Final = 16
_OAEP: Final[Mapping[str, padding.OAEP]] = {
    "RSA-OAEP-256": padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    ),
    "RSA-OAEP": padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA1()),  # noqa: S303  (OAEP's MGF, per RFC 7518)
        algorithm=hashes.SHA1(),  # noqa: S303
        label=None,
    ),
}
_RAW: Final = (bytes, bytearray, memoryview, msgspec.Raw)
_HEADER_DECODER: Final = msgspec.json.Decoder(dict[str, Any])


def encrypt_message(
    message: JsonInput, recipient: PublicKey, *, enc: str = DEFAULT_ENC
) -> dict[str, Any]:
    """Encrypt the message (an object or its raw JSON) to the receiver's `use: enc` key."""
    if recipient.use != "enc" or recipient.alg not in _OAEP:
        raise EncryptionError("the receiver has no usable RSA encryption key")
    if enc not in CONTENT_ENCRYPTIONS:
        raise EncryptionError(f"unsupported content encryption {enc!r}")
    assert isinstance(recipient.crypto_key, rsa.RSAPublicKey)
    plaintext = bytes(message) if isinstance(message, _RAW) else msgspec.json.encode(message)
    cek = os.urandom(CONTENT_ENCRYPTIONS[enc])
    iv = os.urandom(_IV_BYTES)
    sealed = AESGCM(cek).encrypt(iv, plaintext, b"")
    encrypted_key = recipient.crypto_key.encrypt(cek, _OAEP[recipient.alg])
    return {
        "header": {"alg": recipient.alg, "enc": enc, "kid": recipient.kid},
        "encrypted_key": b64url_encode(encrypted_key),
        "iv": b64url_encode(iv),
        "ciphertext": b64url_encode(sealed[:-_TAG_BYTES]),
        "tag": b64url_encode(sealed[-_TAG_BYTES:]),
    }


def decrypt_message(
    encrypted: Any,
    keys: Mapping[str, DecryptionKey] | KeyStore,
    *,
    max_ciphertext_bytes: int = DEFAULT_MAX_CIPHERTEXT_BYTES,
) -> bytes:
    """Decrypt an EncryptedMessage (mapping, Struct or raw JSON) to the message JSON bytes.

    Raises `EncryptionError` for anything that is not a well-formed JWE to one of our keys
    (wrong or unknown key, tampering, unsupported or compressed content, too large).
    """
    jwe = _as_mapping(encrypted)
    if isinstance(keys, KeyStore):
        keys = keys.decryption_keys()
    header, aad = _header_and_aad(jwe)
    if "zip" in header:
        raise EncryptionError("compressed JWE is not accepted")
    if "crit" in header:
        raise EncryptionError("JWE has critical extensions we do not support")
    alg, enc, kid = header.get("alg"), header.get("enc"), header.get("kid")
    if not isinstance(kid, str) or not isinstance(alg, str) or not isinstance(enc, str):
        raise EncryptionError("JWE header needs alg, enc and kid")
    key = keys.get(kid)
    if key is None:
        raise EncryptionError("JWE is encrypted to a key that is not ours")
    if alg != key.alg:
        raise EncryptionError("JWE alg does not match the algorithm of our key")
    if enc not in CONTENT_ENCRYPTIONS:
        raise EncryptionError("unsupported JWE content encryption")
    ciphertext_b64 = _member(jwe, "ciphertext")
    if len(ciphertext_b64) > (max_ciphertext_bytes * 4 + 2) // 3:
        raise EncryptionError(f"encrypted message is larger than {max_ciphertext_bytes} bytes")
    try:
        ciphertext = b64url_decode(ciphertext_b64)
        iv = b64url_decode(_member(jwe, "iv"))
        tag = b64url_decode(_member(jwe, "tag"))
        encrypted_key = b64url_decode(_member(jwe, "encrypted_key"))
    except ValueError:
        raise EncryptionError("JWE members are not canonical base64url") from None
    if len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES:
        raise EncryptionError("JWE iv or tag has the wrong length")
    cek = _unwrap(key, alg, encrypted_key, CONTENT_ENCRYPTIONS[enc])
    try:
        return AESGCM(cek).decrypt(iv, ciphertext + tag, aad)
    except InvalidTag:
        raise EncryptionError("could not decrypt the message with our key") from None


def _unwrap(key: DecryptionKey, alg: str, encrypted_key: bytes, length: int) -> bytes:
    """RSA-OAEP unwrap; on failure a random CEK, so the failure shows only as a bad tag
    (RFC 7516 section 11.5: no oracle telling padding errors from tag errors)."""
    try:
        cek = key.crypto_key.decrypt(encrypted_key, _OAEP[alg])
    except ValueError:
        cek = b""
    return cek if len(cek) == length else os.urandom(length)


def _as_mapping(encrypted: Any) -> Mapping[str, Any]:
    if isinstance(encrypted, _RAW):
        try:
            encrypted = msgspec.json.decode(encrypted)
        except (msgspec.DecodeError, ValueError):
            raise EncryptionError("encrypted message is not JSON") from None
    elif isinstance(encrypted, msgspec.Struct):
        encrypted = msgspec.to_builtins(encrypted)
    if not isinstance(encrypted, Mapping):
        raise EncryptionError("encrypted message is not an object")
    return encrypted


def _member(jwe: Mapping[str, Any], name: str) -> str:
    value = jwe.get(name)
    if not isinstance(value, str):
        raise EncryptionError(f"JWE has no {name}")
    return value


def _header_and_aad(jwe: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Merge the protected, shared and per-recipient headers (disjoint, RFC 7516 7.2.1)."""
    merged: dict[str, Any] = {}
    protected_b64 = jwe.get("protected")
    parts: list[Any] = [jwe.get("header"), jwe.get("unprotected")]
    if protected_b64 is not None:
        if not isinstance(protected_b64, str):
            raise EncryptionError("JWE protected header is not a string")
        try:
            parts.append(_HEADER_DECODER.decode(b64url_decode(protected_b64)))
        except (ValueError, msgspec.DecodeError):
            raise EncryptionError("JWE protected header is not base64url JSON") from None
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, Mapping):
            raise EncryptionError("JWE header is not an object")
        if merged.keys() & part.keys():
            raise EncryptionError("JWE header parameters appear twice")
        merged.update(part)
    aad = (protected_b64 or "").encode("ascii")
    extra = jwe.get("aad")
    if extra is not None:
        try:
            b64url_decode(extra)
        except (ValueError, TypeError):
            raise EncryptionError("JWE aad is not base64url") from None
        aad += b"." + extra.encode("ascii")
    return merged, aad
