"""Any change to a signed envelope is rejected with SignatureError, never another exception.

Hypothesis replaces, deletes or inserts one byte in the signature, the header JSON or the
message JSON of validly signed envelopes (every scheme; JWS with every algorithm), and
also anywhere in the whole body. A mutation may only be accepted when it changes nothing
signed: the header and message decode to the same canonical JSON and the signature value
is the same once parsed (for example a space added after a comma in a dci-signature).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.canonical import CanonicalizationError, canonical_json
from dci_bridge.crypto.dci_signature import parse_dci_signature
from dci_bridge.crypto.envelope import detect_scheme, sign_envelope, verify_envelope
from dci_bridge.crypto.jwk import KeySet, SigningKey, generate_signing_key
from dci_bridge.errors import SignatureError
from dci_bridge.protocol.codec import decode_raw_envelope

SENDER_ID = "spp.example.org"
CLOCK = FixedClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC))
KEYS: dict[str, SigningKey] = {
    alg: generate_signing_key(alg, clock=CLOCK) for alg in ("EdDSA", "ES256", "RS256")
}
SENDER_KEYS = KeySet.from_jwks(
    {"keys": [dict(key.public.jwk) for key in KEYS.values()]}, sender_id=SENDER_ID
)
HEADER = msgspec.json.encode(
    {
        "version": "1.0.0",
        "message_id": "m-1",
        "message_ts": "2025-06-01T12:00:00Z",
        "action": "search",
        "sender_id": SENDER_ID,
        "total_count": 1,
        "is_msg_encrypted": False,
        "meta": {"note": "caf\u00e9 \\u00e9", "n": 1.5, "ok": True},
    }
)
MESSAGE = msgspec.json.encode(
    {
        "transaction_id": "t-1",
        "search_request": [
            {
                "reference_id": "r-1",
                "timestamp": "2025-06-01T12:00:00Z",
                "search_criteria": {
                    "query_type": "idtype-value",
                    "query": {"type": "UIN", "value": "0000000000"},
                    "pagination": {"page_size": 10, "page_number": 1},
                },
            }
        ],
    }
)
# Escapes in the raw JSON text give benign mutations something to find (\u00E9 == \u00e9).
MESSAGE = MESSAGE.replace(b'"t-1"', b'"t\\u002d1"')

CASES = [("jws", alg) for alg in KEYS] + [("jws-detached", alg) for alg in KEYS]
CASES.append(("dci-signature", "EdDSA"))
SIGNATURES = {
    case: sign_envelope(HEADER, MESSAGE, KEYS[case[1]], case[0], sender_id=SENDER_ID, clock=CLOCK)
    for case in CASES
}

Mutation = tuple[str, int, int]  # operation, position (scaled), byte
mutations = st.tuples(
    st.sampled_from(["replace", "delete", "insert"]),
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=0, max_value=255),
)


def mutate(data: bytes, mutation: Mutation) -> bytes:
    operation, position, byte = mutation
    if operation == "insert":
        at = position % (len(data) + 1)
        return data[:at] + bytes([byte]) + data[at:]
    at = position % len(data)
    if operation == "delete":
        return data[:at] + data[at + 1 :]
    if data[at] == byte:
        byte = (byte + 1) % 256
    return data[:at] + bytes([byte]) + data[at + 1 :]


def same_signed_content(header: Any, message: Any) -> bool:
    try:
        return canonical_json(header) == canonical_json(HEADER) and canonical_json(
            message
        ) == canonical_json(MESSAGE)
    except CanonicalizationError:
        return False


def same_signature(value: Any, original: str) -> bool:
    if not isinstance(value, str):
        return False
    if value.strip() == original:
        return True
    if detect_scheme(original) != "dci-signature":
        return False
    try:
        return parse_dci_signature(value) == parse_dci_signature(original)
    except SignatureError:
        return False


def check(signature: Any, header: Any, message: Any, original: str) -> None:
    """Rejected with SignatureError, or accepted only if nothing signed changed."""
    try:
        verify_envelope(signature, header, message, SENDER_KEYS, clock=CLOCK)
    except SignatureError:
        return
    assert same_signed_content(header, message)
    assert same_signature(signature, original)


@pytest.mark.parametrize(("scheme", "alg"), CASES)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=mutations)
@example(mutation=("replace", 0, ord("A")))
def test_mutated_signature_is_rejected(scheme: str, alg: str, mutation: Mutation) -> None:
    original = SIGNATURES[(scheme, alg)]
    mutated = mutate(original.encode(), mutation).decode("latin-1")
    check(mutated, HEADER, MESSAGE, original)


@pytest.mark.parametrize(("scheme", "alg"), CASES)
@pytest.mark.parametrize("part", ["header", "message"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=mutations)
def test_mutated_header_or_message_is_rejected(
    scheme: str, alg: str, part: str, mutation: Mutation
) -> None:
    original = SIGNATURES[(scheme, alg)]
    header = mutate(HEADER, mutation) if part == "header" else HEADER
    message = mutate(MESSAGE, mutation) if part == "message" else MESSAGE
    check(original, header, message, original)


@pytest.mark.parametrize(("scheme", "alg"), [("jws", "EdDSA"), ("dci-signature", "EdDSA")])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=mutations)
def test_mutated_body_is_rejected(scheme: str, alg: str, mutation: Mutation) -> None:
    """The whole body as the API receives it, decoded by the protocol layer first."""
    original = SIGNATURES[(scheme, alg)]
    body = (
        b'{"signature":'
        + msgspec.json.encode(original)
        + b',"header":'
        + HEADER
        + b',"message":'
        + MESSAGE
        + b"}"
    )
    try:
        envelope = decode_raw_envelope(mutate(body, mutation))
    except (msgspec.DecodeError, UnicodeDecodeError):
        # not an envelope at all: a schema error before any signature check (msgspec
        # reports invalid UTF-8 inside a string as UnicodeDecodeError, not DecodeError)
        return
    check(envelope.signature, envelope.header, envelope.message, original)


def test_the_unmutated_envelopes_verify() -> None:
    for (scheme, alg), signature in SIGNATURES.items():
        result = verify_envelope(signature, HEADER, MESSAGE, SENDER_KEYS, clock=CLOCK)
        assert (result.scheme, result.algorithm) == (scheme, alg)
