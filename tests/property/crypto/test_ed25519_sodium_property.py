"""Ed25519 through libsodium (our keys) agrees with OpenSSL (cryptography) byte for byte.

Signing and checking go through PyNaCl for speed (crypto/jwk.py). Ed25519 is deterministic,
so for any key and message our signature must be OpenSSL's; each side must accept the
other's signatures and refuse them once a byte of signature or message changes.
"""

from __future__ import annotations

import datetime as dt

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from dci_bridge.crypto.jwk import PublicKey, SigningKey

CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte)
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


def _ours(seed: bytes) -> tuple[SigningKey, ed25519.Ed25519PrivateKey]:
    openssl = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return SigningKey(openssl, alg="EdDSA", created=CREATED), openssl


def _flip(data: bytes, index: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_rfc8032_vectors() -> None:
    for seed, public, message, signature in RFC8032:
        key, _ = _ours(bytes.fromhex(seed))
        assert key.crypto_key.public_key().public_bytes_raw().hex() == public
        assert key.sign(bytes.fromhex(message)).hex() == signature
        assert key.public.verify(bytes.fromhex(signature), bytes.fromhex(message))


@settings(max_examples=150, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=2048))
def test_signatures_are_openssls_and_each_side_checks_the_other(
    seed: bytes, message: bytes
) -> None:
    key, openssl = _ours(seed)
    ours = key.sign(message)
    assert ours == openssl.sign(message)
    openssl.public_key().verify(ours, message)  # raises if OpenSSL disagrees
    assert key.public.verify(openssl.sign(message), message)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(min_size=1, max_size=512),
    index=st.integers(min_value=0),
    in_signature=st.booleans(),
)
def test_a_changed_byte_is_refused_by_both(
    seed: bytes, message: bytes, index: int, in_signature: bool
) -> None:
    key, openssl = _ours(seed)
    signature = key.sign(message)
    if in_signature:
        signature = _flip(signature, index)
    else:
        message = _flip(message, index)
    assert not key.public.verify(signature, message)
    try:
        openssl.public_key().verify(signature, message)
    except InvalidSignature:
        pass
    else:
        raise AssertionError("OpenSSL accepted a changed signature")


def test_wrong_length_signatures_and_other_keys_are_refused() -> None:
    key, _ = _ours(bytes(range(32)))
    other = PublicKey(
        ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key(),
        alg="EdDSA",
        use="sig",
    )
    signature = key.sign(b"payload")
    assert not key.public.verify(signature[:63], b"payload")
    assert not key.public.verify(signature + b"\0", b"payload")
    assert not other.verify(signature, b"payload")
