"""`sign_envelope`/`verify_envelope` with the `jws` scheme, and every way a JWS can be bad."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import msgspec
import pytest

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.canonical import b64url_decode, b64url_encode, canonical_json
from dci_bridge.crypto.envelope import (
    EnvelopeSigner,
    VerifiedSignature,
    detect_scheme,
    peek_signature,
    sign_envelope,
    signature_key_id,
    verify_envelope,
)
from dci_bridge.crypto.jwk import SigningKey, UnknownKeyError
from dci_bridge.crypto.keys import KeyStore
from dci_bridge.errors import SignatureError, SignatureMissingError
from tests.unit.crypto.crypto_support import ALGORITHMS, HEADER, MESSAGE, SENDER_ID, keyset_of, raw


def b64json(value: Any) -> str:
    return b64url_encode(json.dumps(value).encode())


def forge(header: dict[str, Any], payload: bytes | None, key: SigningKey | None) -> str:
    """A JWS with any header we like, signed (honestly) by `key` over what it says."""
    header_b64 = b64json(header)
    payload_b64 = b64url_encode(payload) if payload is not None else ""
    signing_payload = payload_b64 or b64url_encode(
        canonical_json({"header": HEADER, "message": MESSAGE})
    )
    signature = key.sign(f"{header_b64}.{signing_payload}".encode()) if key else b"\0" * 64
    return f"{header_b64}.{payload_b64}.{b64url_encode(signature)}"


def payload_of(token: str) -> bytes:
    return b64url_decode(token.split(".")[1])


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("scheme", ["jws", "jws-detached"])
def test_round_trip_for_each_algorithm_and_form(
    keys_by_alg: dict[str, SigningKey], clock: FixedClock, alg: str, scheme: Any
) -> None:
    key = keys_by_alg[alg]
    signature = sign_envelope(raw(HEADER), raw(MESSAGE), key, scheme)
    result = verify_envelope(signature, HEADER, MESSAGE, keyset_of(key), clock=clock)
    assert result == VerifiedSignature(scheme, key.kid, alg)
    assert result.is_signed


def test_attached_payload_is_the_json_of_header_and_message(ed_key: SigningKey) -> None:
    header, message = raw(HEADER), raw(MESSAGE)
    token = sign_envelope(header, message, ed_key)
    assert payload_of(token) == b'{"header":' + header + b',"message":' + message + b"}"
    protected = json.loads(b64url_decode(token.split(".")[0]))
    assert protected == {"alg": "EdDSA", "kid": ed_key.kid}


def test_detached_form_has_an_empty_payload_and_signs_canonical_json(ed_key: SigningKey) -> None:
    token = sign_envelope(HEADER, MESSAGE, ed_key, "jws-detached")
    header_b64, payload_b64, signature_b64 = token.split(".")
    assert payload_b64 == ""
    canonical = canonical_json({"header": HEADER, "message": MESSAGE})
    signing_input = f"{header_b64}.{b64url_encode(canonical)}".encode()
    assert ed_key.public.verify(b64url_decode(signature_b64), signing_input)


def test_attached_payload_may_differ_in_formatting_only(
    ed_key: SigningKey, clock: FixedClock
) -> None:
    # A sender that signs pretty-printed JSON with another key order is still verified.
    pretty = json.dumps(
        {"message": MESSAGE, "header": HEADER}, indent=2, ensure_ascii=True
    ).encode()
    token = forge({"alg": "EdDSA", "kid": ed_key.kid}, pretty, ed_key)
    result = verify_envelope(token, raw(HEADER), raw(MESSAGE), keyset_of(ed_key), clock=clock)
    assert result.scheme == "jws"


def test_objects_raw_bytes_and_msgspec_raw_verify_alike(
    ed_key: SigningKey, clock: FixedClock
) -> None:
    token = sign_envelope(HEADER, MESSAGE, ed_key)
    body = msgspec.json.encode({"signature": token, "header": HEADER, "message": MESSAGE})
    parts = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    for header, message in [
        (HEADER, MESSAGE),
        (raw(HEADER), raw(MESSAGE)),
        (parts["header"], parts["message"]),
    ]:
        assert verify_envelope(token, header, message, keyset_of(ed_key), clock=clock).is_signed


def test_envelope_without_message_signs_only_the_header(
    ed_key: SigningKey, clock: FixedClock
) -> None:
    token = sign_envelope(HEADER, msgspec.UNSET, ed_key)
    assert json.loads(payload_of(token)) == {"header": HEADER}
    assert verify_envelope(token, HEADER, msgspec.UNSET, keyset_of(ed_key), clock=clock).is_signed
    with pytest.raises(SignatureError, match="does not match"):
        verify_envelope(token, HEADER, None, keyset_of(ed_key), clock=clock)


@pytest.mark.parametrize("scheme", ["jws", "jws-detached"])
@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({**HEADER, "sender_id": "attacker.example.org"}, MESSAGE),
        ({**HEADER, "total_count": 2}, MESSAGE),
        ({**HEADER, "is_msg_encrypted": 0}, MESSAGE),  # false -> 0: equal in Python, not in JSON
        (HEADER, {**MESSAGE, "transaction_id": "txn-2"}),
        (HEADER, {**MESSAGE, "extra": None}),
        (HEADER, {"transaction_id": "txn-1"}),
    ],
)
def test_tampered_header_or_message_is_rejected(
    ed_key: SigningKey, clock: FixedClock, scheme: Any, header: Any, message: Any
) -> None:
    token = sign_envelope(HEADER, MESSAGE, ed_key, scheme)
    with pytest.raises(SignatureError) as caught:
        verify_envelope(token, header, message, keyset_of(ed_key), clock=clock)
    assert "attacker" not in caught.value.message
    assert caught.value.code == "err.signature.invalid"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signature_by_another_key_claiming_our_kid_is_rejected(
    keys_by_alg: dict[str, SigningKey],
    other_keys_by_alg: dict[str, SigningKey],
    clock: FixedClock,
    alg: str,
) -> None:
    real, impostor = keys_by_alg[alg], other_keys_by_alg[alg]
    token = forge(
        {"alg": alg, "kid": real.kid}, raw({"header": HEADER, "message": MESSAGE}), impostor
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(token, HEADER, MESSAGE, keyset_of(real), clock=clock)


def test_signature_by_a_key_the_sender_does_not_have_is_an_unknown_kid(
    ed_key: SigningKey, other_keys_by_alg: dict[str, SigningKey], clock: FixedClock
) -> None:
    token = sign_envelope(HEADER, MESSAGE, other_keys_by_alg["EdDSA"])
    with pytest.raises(UnknownKeyError, match="unknown key id"):
        verify_envelope(token, HEADER, MESSAGE, keyset_of(ed_key), clock=clock)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_rejected(ed_key: SigningKey, clock: FixedClock, alg: str) -> None:
    payload = b64url_encode(raw({"header": HEADER, "message": MESSAGE}))
    for token in [
        f"{b64json({'alg': alg, 'kid': ed_key.kid})}.{payload}.",
        f"{b64json({'alg': alg, 'kid': ed_key.kid})}.{payload}.AAAA",
    ]:
        with pytest.raises(SignatureError):
            verify_envelope(token, HEADER, MESSAGE, keyset_of(ed_key), clock=clock)
    with pytest.raises(SignatureError, match="alg none"):
        verify_envelope(
            f"{b64json({'alg': alg, 'kid': ed_key.kid})}.{payload}.AAAA",
            HEADER,
            MESSAGE,
            keyset_of(ed_key),
            clock=clock,
            allow_unsigned=True,
        )


@pytest.mark.parametrize(
    ("key_alg", "claimed"),
    [("EdDSA", "ES256"), ("ES256", "EdDSA"), ("RS256", "PS256"), ("ES256", "ES384")],
)
def test_an_algorithm_other_than_the_keys_is_rejected(
    keys_by_alg: dict[str, SigningKey], clock: FixedClock, key_alg: str, claimed: str
) -> None:
    key = keys_by_alg[key_alg]
    token = forge(
        {"alg": claimed, "kid": key.kid}, raw({"header": HEADER, "message": MESSAGE}), key
    )
    with pytest.raises(SignatureError, match="does not match the algorithm"):
        verify_envelope(token, HEADER, MESSAGE, keyset_of(key), clock=clock)


def test_hmac_with_the_public_key_as_secret_is_rejected(
    keys_by_alg: dict[str, SigningKey], clock: FixedClock
) -> None:
    """The classic algorithm-confusion attack: HS256 keyed with the published RSA key."""
    key = keys_by_alg["RS256"]
    header_b64 = b64json({"alg": "HS256", "kid": key.kid})
    payload_b64 = b64url_encode(raw({"header": HEADER, "message": MESSAGE}))
    secret = json.dumps(dict(key.public.jwk)).encode()
    mac = hmac.new(secret, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    token = f"{header_b64}.{payload_b64}.{b64url_encode(mac)}"
    with pytest.raises(SignatureError, match="does not match the algorithm"):
        verify_envelope(token, HEADER, MESSAGE, keyset_of(key), clock=clock)


@pytest.mark.parametrize(
    "extra",
    [{"crit": ["exp"], "exp": 1}, {"b64": False, "crit": ["b64"]}, {"b64": False}],
)
def test_critical_and_unencoded_payload_headers_are_rejected(
    ed_key: SigningKey, clock: FixedClock, extra: dict[str, Any]
) -> None:
    token = forge(
        {"alg": "EdDSA", "kid": ed_key.kid, **extra},
        raw({"header": HEADER, "message": MESSAGE}),
        ed_key,
    )
    with pytest.raises(SignatureError):
        verify_envelope(token, HEADER, MESSAGE, keyset_of(ed_key), clock=clock)


@pytest.mark.parametrize(
    "header",
    [{"kid": "k"}, {"alg": "EdDSA"}, {"alg": "EdDSA", "kid": 5}, {"alg": 1, "kid": "k"}, ["EdDSA"]],
)
def test_headers_without_a_usable_alg_and_kid_are_rejected(
    ed_key: SigningKey, clock: FixedClock, header: Any
) -> None:
    token = forge(header, raw({"header": HEADER, "message": MESSAGE}), ed_key)
    with pytest.raises(SignatureError, match="JWS header"):
        verify_envelope(token, HEADER, MESSAGE, keyset_of(ed_key), clock=clock)


@pytest.mark.parametrize(
    "value",
    [
        "a.b",
        "a.b.c.d",
        "x" * 10,
        "e30.e30.AAAA=",
        "é.e30.AAAA",
        "unsigned-stub",
        '{"alg": "none"}',
        ".e30.AAAA",
    ],
)
def test_malformed_signatures_are_rejected_even_when_unsigned_is_allowed(
    ed_key: SigningKey, clock: FixedClock, value: str
) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_envelope(value, HEADER, MESSAGE, keyset_of(ed_key), clock=clock, allow_unsigned=True)
    assert not isinstance(caught.value, SignatureMissingError)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_signature_is_rejected_unless_the_sender_may_send_unsigned(
    ed_key: SigningKey, clock: FixedClock, value: str | None
) -> None:
    with pytest.raises(SignatureMissingError) as caught:
        verify_envelope(value, HEADER, MESSAGE, keyset_of(ed_key), clock=clock)
    assert caught.value.code == "err.signature.missing"
    result = verify_envelope(
        value, HEADER, MESSAGE, keyset_of(ed_key), clock=clock, allow_unsigned=True
    )
    assert result == VerifiedSignature("unsigned")
    assert not result.is_signed


def test_scheme_policy_restricts_what_a_sender_may_use(
    ed_key: SigningKey, clock: FixedClock
) -> None:
    jws = sign_envelope(HEADER, MESSAGE, ed_key)
    dci = sign_envelope(HEADER, MESSAGE, ed_key, "dci-signature", sender_id=SENDER_ID, clock=clock)
    keys = keyset_of(ed_key)
    assert verify_envelope(jws, HEADER, MESSAGE, keys, clock=clock, scheme_policy="jws").is_signed
    with pytest.raises(SignatureError, match="dci-signature scheme"):
        verify_envelope(jws, HEADER, MESSAGE, keys, clock=clock, scheme_policy="dci-signature")
    with pytest.raises(SignatureError, match="jws scheme"):
        verify_envelope(dci, HEADER, MESSAGE, keys, clock=clock, scheme_policy="jws")


def test_non_json_raw_parts_are_a_signature_error(ed_key: SigningKey, clock: FixedClock) -> None:
    token = sign_envelope(HEADER, MESSAGE, ed_key, "jws-detached")
    with pytest.raises(SignatureError, match="not valid JSON"):
        verify_envelope(token, b'{"a":', raw(MESSAGE), keyset_of(ed_key), clock=clock)


def test_detect_scheme_and_key_id_peek(ed_key: SigningKey, clock: FixedClock) -> None:
    jws = sign_envelope(HEADER, MESSAGE, ed_key)
    dci = sign_envelope(HEADER, MESSAGE, ed_key, "dci-signature", sender_id=SENDER_ID, clock=clock)
    assert detect_scheme(jws) == "jws"
    assert detect_scheme(dci) == "dci-signature"
    assert signature_key_id(jws) == signature_key_id(dci) == ed_key.kid
    for junk in [None, "", "a.b.c", "garbage", 5]:
        assert signature_key_id(junk) is None  # type: ignore[arg-type]


def test_envelope_signer_follows_the_key_store_and_receiver_scheme(
    tmp_path: Any, clock: FixedClock
) -> None:
    store = KeyStore(tmp_path / "keys", clock=clock)
    signer = EnvelopeSigner(store, sender_id="crvs.example.org", clock=clock)
    first = signer.sign(raw(HEADER), raw(MESSAGE))
    store.rotate()
    second = signer.sign(raw(HEADER), raw(MESSAGE))
    assert signature_key_id(first) != signature_key_id(second) == store.current.kid
    dci = signer.sign(HEADER, MESSAGE, scheme="dci-signature")
    assert 'kidId="crvs.example.org|' in dci
    published = keyset_of(store.current, sender_id="crvs.example.org")
    assert verify_envelope(dci, HEADER, MESSAGE, published, clock=clock).scheme == "dci-signature"


def test_signing_rejects_unusable_schemes(
    ed_key: SigningKey, keys_by_alg: dict[str, SigningKey]
) -> None:
    with pytest.raises(ValueError, match="sender_id"):
        sign_envelope(HEADER, MESSAGE, ed_key, "dci-signature")
    with pytest.raises(ValueError, match="Ed25519"):
        sign_envelope(HEADER, MESSAGE, keys_by_alg["ES256"], "dci-signature", sender_id="me")
    with pytest.raises(ValueError, match="unknown signature scheme"):
        sign_envelope(HEADER, MESSAGE, ed_key, "hmac")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown signature scheme"):
        EnvelopeSigner(ed_key, sender_id="me", default_scheme="x")  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["jws", "jws-detached", "dci-signature"])
def test_a_peeked_signature_verifies_as_the_token_does(
    ed_key: SigningKey, clock: FixedClock, scheme: Any
) -> None:
    """The admission path parses a JWS once (`peek_signature`) and hands it to the check."""
    token = sign_envelope(HEADER, MESSAGE, ed_key, scheme, sender_id=SENDER_ID, clock=clock)
    kid, parsed = peek_signature(token)
    assert kid == ed_key.kid == signature_key_id(token)
    assert (parsed is None) == (scheme == "dci-signature")
    keys = keyset_of(ed_key)
    plain = verify_envelope(token, HEADER, MESSAGE, keys, clock=clock)
    assert verify_envelope(token, HEADER, MESSAGE, keys, clock=clock, parsed=parsed) == plain
    tampered = dict(MESSAGE, transaction_id="attacker")
    with pytest.raises(SignatureError):
        verify_envelope(token, HEADER, tampered, keys, clock=clock, parsed=parsed)


@pytest.mark.parametrize("value", [None, "", "   ", "a.b", "not a signature", 42])
def test_peeking_at_a_malformed_signature_never_raises(value: Any) -> None:
    assert peek_signature(value) == (None, None)
