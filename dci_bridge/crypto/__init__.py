"""Keys, JWKS, message signatures (`jws`, `dci-signature`), JWE and OAuth2 access tokens.

Everything the other layers call is re-exported here; tests/unit/crypto pins the list.

| module            | what                                                             |
|-------------------|------------------------------------------------------------------|
| `envelope`        | `sign_envelope`, `verify_envelope`, `EnvelopeSigner`: the entry  |
| `keys`            | `KeyStore`: the bridge's persisted signing and encryption keys   |
| `jwk`             | parsed keys (`SigningKey`, `PublicKey`, `KeySet`), pinned algs   |
| `jwks`            | `JwksCache`: senders' JWKS, inline or fetched, cached            |
| `jws`             | scheme `jws`: compact JWS, attached and detached                 |
| `dci_signature`   | scheme `dci-signature`: the standard's Signature string          |
| `jwe`             | `EncryptedMessage` encrypt/decrypt                               |
| `tokens`          | client secrets, access tokens, scopes                            |
| `canonical`       | RFC 8785 JSON and the signed `{header, message}` object          |
"""

from dci_bridge.crypto.canonical import CanonicalizationError, SignedContent, canonical_json
from dci_bridge.crypto.envelope import (
    EnvelopeSigner,
    SchemePolicy,
    SignatureScheme,
    VerifiedSignature,
    detect_scheme,
    peek_signature,
    sign_envelope,
    signature_key_id,
    verify_envelope,
)
from dci_bridge.crypto.jwe import decrypt_message, encrypt_message
from dci_bridge.crypto.jwk import (
    DecryptionKey,
    KeyFormatError,
    KeySet,
    PublicKey,
    SigningKey,
    UnknownKeyError,
    load_decryption_key,
    load_signing_key,
)
from dci_bridge.crypto.jwks import JwksCache, JwksError
from dci_bridge.crypto.keys import KeyStore, KeyStoreError
from dci_bridge.crypto.tokens import (
    SCOPES,
    AccessTokenVerifier,
    TokenClaims,
    bearer_token,
    generate_secret,
    grant_scopes,
    hash_secret,
    issue_access_token,
    verify_access_token,
    verify_secret,
)

SenderKeys = KeySet
"""A sender's public keys, as `verify_envelope` takes them."""

__all__ = [
    "SCOPES",
    "AccessTokenVerifier",
    "CanonicalizationError",
    "DecryptionKey",
    "EnvelopeSigner",
    "JwksCache",
    "JwksError",
    "KeyFormatError",
    "KeySet",
    "KeyStore",
    "KeyStoreError",
    "PublicKey",
    "SchemePolicy",
    "SenderKeys",
    "SignatureScheme",
    "SignedContent",
    "SigningKey",
    "TokenClaims",
    "UnknownKeyError",
    "VerifiedSignature",
    "bearer_token",
    "canonical_json",
    "decrypt_message",
    "detect_scheme",
    "encrypt_message",
    "generate_secret",
    "grant_scopes",
    "hash_secret",
    "issue_access_token",
    "load_decryption_key",
    "load_signing_key",
    "peek_signature",
    "sign_envelope",
    "signature_key_id",
    "verify_access_token",
    "verify_envelope",
    "verify_secret",
]
