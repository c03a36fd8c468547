"""`EncryptedMessage`: a JWE in flattened form that takes the place of `message`.

Only the shape lives here; decryption is the crypto layer's. The standard names the parts
base64url but gives no pattern, so a malformed part is `err.encryption.invalid` there rather
than a schema error here.
"""

from __future__ import annotations

import msgspec


class EncryptionHeader(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """JWE header: key management algorithm, content encryption algorithm, recipient key id."""

    alg: str
    enc: str
    kid: str


class EncryptedMessage(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """An encrypted `message`; `header.is_msg_encrypted` is true when this is sent."""

    header: EncryptionHeader
    ciphertext: str
    encrypted_key: str
    tag: str
    iv: str
