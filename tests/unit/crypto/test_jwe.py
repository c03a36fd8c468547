"""EncryptedMessage: shape, interop with a JOSE library, pinned algorithms and bounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.canonical import b64url_decode, b64url_encode
from dci_bridge.crypto.jwe import decrypt_message, encrypt_message
from dci_bridge.crypto.jwk import (
    DecryptionKey,
    KeySet,
    SigningKey,
    generate_decryption_key,
    public_key_from_jwk,
)
from dci_bridge.crypto.keys import KeyStore
from dci_bridge.errors import EncryptionError
from dci_bridge.protocol.codec import decode_encrypted
from dci_bridge.protocol.encrypted import EncryptedMessage
from tests.unit.crypto.crypto_support import MESSAGE, START, raw


def _clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def our_key() -> DecryptionKey:
    return generate_decryption_key(clock=_clock())


@pytest.fixture(scope="module")
def stranger_key() -> DecryptionKey:
    return generate_decryption_key(clock=_clock())


def keys_of(key: DecryptionKey) -> dict[str, DecryptionKey]:
    return {key.kid: key}


def jwcrypto_private(key: DecryptionKey) -> jwcrypto_jwk.JWK:
    return jwcrypto_jwk.JWK(**key.private_jwk())


def test_encrypted_message_has_exactly_the_standards_members(our_key: DecryptionKey) -> None:
    encrypted = encrypt_message(MESSAGE, our_key.public)
    assert set(encrypted) == {"header", "encrypted_key", "iv", "ciphertext", "tag"}
    assert encrypted["header"] == {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": our_key.kid}
    for member in ("encrypted_key", "iv", "ciphertext", "tag"):
        b64url_decode(encrypted[member])  # base64url, no padding
    assert len(b64url_decode(encrypted["iv"])) == 12
    assert len(b64url_decode(encrypted["tag"])) == 16


def test_round_trip_from_objects_raw_bytes_and_structs(our_key: DecryptionKey) -> None:
    for message in (MESSAGE, raw(MESSAGE), msgspec.Raw(raw(MESSAGE))):
        encrypted = encrypt_message(message, our_key.public)
        assert decrypt_message(encrypted, keys_of(our_key)) == raw(MESSAGE)
        assert decrypt_message(raw(encrypted), keys_of(our_key)) == raw(MESSAGE)
    as_struct = decode_encrypted(raw(encrypt_message(MESSAGE, our_key.public)))
    assert isinstance(as_struct, EncryptedMessage)
    assert decrypt_message(as_struct, keys_of(our_key)) == raw(MESSAGE)


def test_what_a_jose_library_sends_with_an_unprotected_header_decrypts(
    our_key: DecryptionKey,
) -> None:
    """opencrvs/dci-crvs-api: RSA key, A256GCM, per-recipient unprotected header."""
    public = jwcrypto_jwk.JWK(**dict(our_key.public.jwk))
    token = jwcrypto_jwe.JWE(
        raw(MESSAGE),
        recipient=public,
        header=json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": our_key.kid}),
    )
    encrypted = json.loads(token.serialize())
    assert set(encrypted) == {"header", "encrypted_key", "iv", "ciphertext", "tag"}
    assert decrypt_message(encrypted, keys_of(our_key)) == raw(MESSAGE)


def test_a_full_flattened_jwe_with_a_protected_header_decrypts(our_key: DecryptionKey) -> None:
    token = jwcrypto_jwe.JWE(
        raw(MESSAGE),
        protected=json.dumps({"alg": "RSA-OAEP-256", "enc": "A128GCM", "kid": our_key.kid}),
        aad=b"bound",
    )
    token.add_recipient(jwcrypto_jwk.JWK(**dict(our_key.public.jwk)))
    encrypted = json.loads(token.serialize())
    assert decrypt_message(encrypted, keys_of(our_key)) == raw(MESSAGE)
    encrypted["aad"] = b64url_encode(b"other")
    with pytest.raises(EncryptionError, match="could not decrypt"):
        decrypt_message(encrypted, keys_of(our_key))


def test_a_jose_library_decrypts_what_we_send(our_key: DecryptionKey) -> None:
    encrypted = encrypt_message(MESSAGE, our_key.public)
    token = jwcrypto_jwe.JWE()
    token.deserialize(json.dumps(encrypted), key=jwcrypto_private(our_key))
    assert json.loads(token.payload) == MESSAGE


def test_rsa_oaep_receivers_get_rsa_oaep(our_key: DecryptionKey) -> None:
    receiver = public_key_from_jwk({**our_key.public.jwk, "alg": "RSA-OAEP"})
    encrypted = encrypt_message(MESSAGE, receiver)
    assert encrypted["header"]["alg"] == "RSA-OAEP"
    token = jwcrypto_jwe.JWE()
    token.deserialize(json.dumps(encrypted), key=jwcrypto_private(our_key))
    assert json.loads(token.payload) == MESSAGE


def test_encrypted_to_someone_else_is_rejected(
    our_key: DecryptionKey, stranger_key: DecryptionKey
) -> None:
    elsewhere = encrypt_message(MESSAGE, stranger_key.public)
    with pytest.raises(EncryptionError, match="not ours"):
        decrypt_message(elsewhere, keys_of(our_key))
    elsewhere["header"]["kid"] = our_key.kid  # claims our kid, but our key cannot open it
    with pytest.raises(EncryptionError, match="could not decrypt"):
        decrypt_message(elsewhere, keys_of(our_key))


@pytest.mark.parametrize("member", ["ciphertext", "tag", "iv", "encrypted_key"])
def test_tampering_with_any_member_is_rejected(our_key: DecryptionKey, member: str) -> None:
    encrypted = encrypt_message(MESSAGE, our_key.public)
    data = bytearray(b64url_decode(encrypted[member]))
    data[0] ^= 1
    encrypted[member] = b64url_encode(bytes(data))
    with pytest.raises(EncryptionError, match="could not decrypt"):
        decrypt_message(encrypted, keys_of(our_key))


def test_oversized_ciphertext_is_rejected_before_decoding(our_key: DecryptionKey) -> None:
    encrypted = encrypt_message({"blob": "x" * 5000}, our_key.public)
    assert decrypt_message(encrypted, keys_of(our_key), max_ciphertext_bytes=6000)
    with pytest.raises(EncryptionError, match="larger than 4096 bytes"):
        decrypt_message(encrypted, keys_of(our_key), max_ciphertext_bytes=4096)
    encrypted["ciphertext"] = "A" * 50_000_000  # never decoded
    with pytest.raises(EncryptionError, match="larger than"):
        decrypt_message(encrypted, keys_of(our_key))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"zip": "DEF"}, "compressed"),
        ({"crit": ["exp"]}, "critical"),
        ({"alg": "RSA-OAEP"}, "alg does not match"),
        ({"alg": "RSA1_5"}, "alg does not match"),
        ({"alg": "dir"}, "alg does not match"),
        ({"enc": "A128CBC-HS256"}, "unsupported"),
        ({"kid": None}, "needs alg, enc and kid"),
        ({"enc": None}, "needs alg, enc and kid"),
    ],
)
def test_header_values_are_pinned(
    our_key: DecryptionKey, change: dict[str, Any], reason: str
) -> None:
    encrypted = encrypt_message(MESSAGE, our_key.public)
    header = {**encrypted["header"], **change}
    encrypted["header"] = {k: v for k, v in header.items() if v is not None}
    with pytest.raises(EncryptionError, match=reason):
        decrypt_message(encrypted, keys_of(our_key))


def test_a_zip_parameter_in_the_protected_header_is_rejected(our_key: DecryptionKey) -> None:
    token = jwcrypto_jwe.JWE(
        raw(MESSAGE),
        protected=json.dumps(
            {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": our_key.kid, "zip": "DEF"}
        ),
    )
    token.add_recipient(jwcrypto_jwk.JWK(**dict(our_key.public.jwk)))
    with pytest.raises(EncryptionError, match="compressed"):
        decrypt_message(json.loads(token.serialize()), keys_of(our_key))


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        [],
        {"header": "x", "ciphertext": "", "iv": "", "tag": "", "encrypted_key": ""},
        {"header": {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k"}},
        {"protected": 5},
        {"protected": "!!!"},
        {"header": {"alg": "RSA-OAEP-256"}, "unprotected": {"alg": "RSA-OAEP-256"}},
    ],
)
def test_malformed_documents_are_encryption_errors(our_key: DecryptionKey, document: Any) -> None:
    with pytest.raises(EncryptionError):
        decrypt_message(document, keys_of(our_key))


def test_members_must_be_canonical_base64url_with_right_lengths(our_key: DecryptionKey) -> None:
    encrypted = encrypt_message(MESSAGE, our_key.public)
    with pytest.raises(EncryptionError, match="base64url"):
        decrypt_message({**encrypted, "iv": encrypted["iv"] + "="}, keys_of(our_key))
    with pytest.raises(EncryptionError, match="wrong length"):
        decrypt_message({**encrypted, "iv": b64url_encode(b"\0" * 16)}, keys_of(our_key))


def test_only_rsa_encryption_keys_are_encrypted_to(ed_key: SigningKey) -> None:
    with pytest.raises(EncryptionError, match="no usable"):
        encrypt_message(MESSAGE, ed_key.public)


def test_unknown_content_encryption_is_refused(our_key: DecryptionKey) -> None:
    with pytest.raises(EncryptionError, match="unsupported"):
        encrypt_message(MESSAGE, our_key.public, enc="A128CBC-HS256")


def test_key_store_decrypts_for_current_and_retired_keys(tmp_path: Path) -> None:
    clock = _clock()
    store = KeyStore(tmp_path / "keys", clock=clock)
    published = KeySet.from_jwks(store.public_jwks())
    receiver_view = published.encryption_key()
    assert receiver_view is not None
    assert receiver_view.kid == store.encryption_key.kid
    encrypted = encrypt_message(MESSAGE, receiver_view)
    store.rotate_encryption()
    assert decrypt_message(encrypted, store) == raw(MESSAGE)
