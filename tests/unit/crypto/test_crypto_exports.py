"""The public surface of dci_bridge.crypto, pinned (other layers import these names)."""

from __future__ import annotations

import dci_bridge.crypto as crypto
from dci_bridge.errors import SignatureError

EXPECTED = {
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
    "peek_signature",
    "decrypt_message",
    "detect_scheme",
    "encrypt_message",
    "generate_secret",
    "grant_scopes",
    "hash_secret",
    "issue_access_token",
    "load_decryption_key",
    "load_signing_key",
    "sign_envelope",
    "signature_key_id",
    "verify_access_token",
    "verify_envelope",
    "verify_secret",
}


def test_exported_members_are_pinned() -> None:
    assert set(crypto.__all__) == EXPECTED
    for name in crypto.__all__:
        assert getattr(crypto, name) is not None


def test_sender_keys_is_the_key_set() -> None:
    assert crypto.SenderKeys is crypto.KeySet


def test_signature_errors_carry_dci_codes() -> None:
    assert issubclass(crypto.UnknownKeyError, SignatureError)
    assert issubclass(crypto.JwksError, SignatureError)
    assert crypto.JwksError("x").code == "err.signature.invalid"
