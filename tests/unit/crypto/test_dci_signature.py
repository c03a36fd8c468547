"""Scheme `dci-signature`: the exact bytes signed, tolerant parsing, strict checks, expiry."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.canonical import canonical_json
from dci_bridge.crypto.dci_signature import parse_dci_signature
from dci_bridge.crypto.envelope import VerifiedSignature, sign_envelope, verify_envelope
from dci_bridge.crypto.jwk import SigningKey, UnknownKeyError
from dci_bridge.errors import SignatureError
from tests.unit.crypto.crypto_support import HEADER, MESSAGE, SENDER_ID, keyset_of

CREATED = 1748779200  # 2025-06-01T12:00:00Z, the fixture clock


def sign(key: SigningKey, clock: FixedClock, **kwargs: object) -> str:
    return sign_envelope(
        HEADER, MESSAGE, key, "dci-signature", sender_id=SENDER_ID, clock=clock, **kwargs
    )  # type: ignore[arg-type]


def verify(value: str, key: SigningKey, clock: FixedClock, **kwargs: object) -> VerifiedSignature:
    return verify_envelope(value, HEADER, MESSAGE, keyset_of(key), clock=clock, **kwargs)  # type: ignore[arg-type]


def params(value: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def test_value_has_the_standards_shape(ed_key: SigningKey, clock: FixedClock) -> None:
    value = sign(ed_key, clock)
    assert re.fullmatch(
        r'namespace="dci", kidId="spp\.example\.org\|[\w-]+\|ed25519", algorithm="ed25519", '
        r'created="\d+", expires="\d+", headers="\(created\) \(expires\) digest", '
        r'signature="[A-Za-z0-9+/]+={0,2}"',
        value,
    )
    fields = params(value)
    assert fields["kidId"] == f"{SENDER_ID}|{ed_key.kid}|ed25519"
    assert (fields["created"], fields["expires"]) == (str(CREATED), str(CREATED + 600))


def test_signature_covers_created_expires_and_blake2b_of_canonical_json(
    ed_key: SigningKey, clock: FixedClock
) -> None:
    value = sign(ed_key, clock)
    fields = params(value)
    digest = hashlib.blake2b(
        canonical_json({"header": HEADER, "message": MESSAGE}), digest_size=64
    ).digest()
    signing_string = (
        f"(created): {CREATED}\n(expires): {CREATED + 600}\n"
        f"digest: BLAKE-512={base64.b64encode(digest).decode()}"
    ).encode()
    assert ed_key.public.verify(base64.b64decode(fields["signature"]), signing_string)


def test_round_trip(ed_key: SigningKey, clock: FixedClock) -> None:
    assert verify(sign(ed_key, clock), ed_key, clock) == VerifiedSignature(
        "dci-signature", ed_key.kid, "EdDSA"
    )


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda v: "Signature: " + v,
        lambda v: "Signature:" + v,
        lambda v: "Signature:  " + v.replace(", ", ","),
        lambda v: v.replace(", ", ","),
        lambda v: v.replace(", ", " , "),
        lambda v: v.replace("kidId=", "keyId="),
        lambda v: v.replace('namespace="dci"', 'namespace="spdci"'),
        lambda v: v.replace('namespace="dci", ', ""),
        lambda v: v.replace('algorithm="ed25519", ', ""),
        lambda v: v.replace(', headers="(created) (expires) digest"', ""),
        lambda v: "  " + v + "\n",
    ],
)
def test_tolerated_spellings_verify(ed_key: SigningKey, clock: FixedClock, rewrite) -> None:
    assert verify(rewrite(sign(ed_key, clock)), ed_key, clock).scheme == "dci-signature"


@pytest.mark.parametrize(
    ("rewrite", "reason"),
    [
        (lambda v: v.replace('namespace="dci"', 'namespace="other"'), "namespace"),
        (lambda v: v.replace('algorithm="ed25519"', 'algorithm="rsa-sha256"'), "algorithm"),
        (lambda v: v.replace("|ed25519", "|rsa"), "kidId algorithm"),
        (lambda v: v.replace("(created) (expires) digest", "(created) digest"), "headers"),
        (lambda v: v + ', extra="1"', "unknown parameter"),
        (lambda v: v + ', created="1"', "repeats"),
        (lambda v: v.replace("kidId=", "keyId=") + ', kidId="a|b|ed25519"', "repeats"),
        (lambda v: re.sub(r', created="\d+"', "", v), "no created"),
        (lambda v: re.sub(r', signature="[^"]+"', "", v), "no signature"),
        (lambda v: re.sub(r'kidId="[^"]+"', 'kidId="only-one-part"', v), "kidId"),
        (lambda v: re.sub(r'created="(\d+)"', r'created="+\1"', v), "Unix seconds"),
        (lambda v: re.sub(r'created="(\d+)"', r"created=\1", v), "not a valid"),
        (lambda v: v.replace(", ", "; "), "not a valid"),
        (lambda v: v.replace("Signature", "") + ",", "not a valid"),
        (lambda v: "signature: " + v, "not a valid"),
        (lambda v: re.sub(r'signature="([^"]+)"', r'signature="\1=="', v), "base64"),
        (lambda v: re.sub(r'signature="([^"]+)"', 'signature="AAAA"', v), "Ed25519 signature"),
    ],
)
def test_anything_else_is_malformed(
    ed_key: SigningKey, clock: FixedClock, rewrite, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(rewrite(sign(ed_key, clock)), ed_key, clock, allow_unsigned=True)


def test_expired_signature_is_rejected(ed_key: SigningKey, clock: FixedClock) -> None:
    value = sign(ed_key, clock, ttl_s=60)
    clock.advance(59)
    assert verify(value, ed_key, clock).is_signed
    clock.advance(1)
    with pytest.raises(SignatureError, match="expired"):
        verify(value, ed_key, clock)


def test_created_in_the_future_beyond_the_skew_is_rejected(
    ed_key: SigningKey, clock: FixedClock
) -> None:
    value = sign(ed_key, clock)
    clock.advance(-60)
    assert verify(value, ed_key, clock).is_signed
    clock.advance(-1)
    with pytest.raises(SignatureError, match="future"):
        verify(value, ed_key, clock)
    assert verify(value, ed_key, clock, max_skew_s=61).is_signed


def test_expires_before_created_is_rejected(ed_key: SigningKey, clock: FixedClock) -> None:
    value = sign(ed_key, clock)
    bad = re.sub(r'expires="\d+"', f'expires="{CREATED}"', value)
    with pytest.raises(SignatureError, match="expires before"):
        verify(bad, ed_key, clock)


def test_changed_times_break_the_signature(ed_key: SigningKey, clock: FixedClock) -> None:
    value = sign(ed_key, clock)
    longer = re.sub(r'expires="\d+"', f'expires="{CREATED + 10**6}"', value)
    with pytest.raises(SignatureError, match="does not verify"):
        verify(longer, ed_key, clock)


def test_tampered_message_is_rejected(ed_key: SigningKey, clock: FixedClock) -> None:
    value = sign(ed_key, clock)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(
            value, HEADER, {**MESSAGE, "transaction_id": "other"}, keyset_of(ed_key), clock=clock
        )


def test_key_is_looked_up_by_key_id_in_the_senders_jwks(
    ed_key: SigningKey, other_keys_by_alg: dict[str, SigningKey], clock: FixedClock
) -> None:
    other = other_keys_by_alg["EdDSA"]
    value = sign(ed_key, clock)
    both = keyset_of(other, ed_key)
    assert verify_envelope(value, HEADER, MESSAGE, both, clock=clock).key_id == ed_key.kid
    with pytest.raises(UnknownKeyError):
        verify_envelope(value, HEADER, MESSAGE, keyset_of(other), clock=clock)
    impostor = value.replace(ed_key.kid, other.kid)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(impostor, HEADER, MESSAGE, both, clock=clock)


def test_kid_naming_a_non_ed25519_key_is_rejected(
    ed_key: SigningKey, keys_by_alg: dict[str, SigningKey], clock: FixedClock
) -> None:
    es256 = keys_by_alg["ES256"]
    value = sign(ed_key, clock).replace(ed_key.kid, es256.kid)
    with pytest.raises(SignatureError, match="not an Ed25519 key"):
        verify_envelope(value, HEADER, MESSAGE, keyset_of(ed_key, es256), clock=clock)


def test_kid_naming_another_sender_is_rejected(ed_key: SigningKey, clock: FixedClock) -> None:
    value = sign(ed_key, clock).replace(f'"{SENDER_ID}|', '"attacker.example.org|')
    with pytest.raises(SignatureError, match="different sender"):
        verify(value, ed_key, clock)
    anonymous = keyset_of(ed_key, sender_id=None)  # no sender to compare with: key decides
    assert verify_envelope(value, HEADER, MESSAGE, anonymous, clock=clock).is_signed


def test_sender_ids_with_pipes_split_from_the_right() -> None:
    sig = base64.b64encode(b"\1" * 64).decode()
    parsed = parse_dci_signature(
        f'kidId="a|b|kid-1|ed25519", created="1", expires="2", signature="{sig}"'
    )
    assert (parsed.sender_id, parsed.key_id) == ("a|b", "kid-1")


@pytest.mark.parametrize("value", ["x" * 3000, 'namespace="dcí"', ""])
def test_oversized_or_non_ascii_values_are_rejected(value: str) -> None:
    with pytest.raises(SignatureError):
        parse_dci_signature(value)
