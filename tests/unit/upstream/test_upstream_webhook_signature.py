"""OpenCRVS webhook signatures: the digest's test vector (computed with Node's crypto)."""

from __future__ import annotations

from dci_bridge.upstream.webhook_signature import (
    encode_uri_component,
    verify_webhook_signature,
    webhook_signature,
)

SECRET = "c0ffee00-1111-4222-8333-444455556666"
BODY = (
    '{"timestamp":"2026-11-23T08:00:00.000Z","id":"9a0b7c1e-0000-4000-8000-000000000001",'
    '"event":{"hub":{"topic":"BIRTH_REGISTERED"},"context":[{"resourceType":"Bundle",'
    '"type":"document","entry":[],"note":"Ünïcode & spaces/+?\'()*!~"}]}}'
).encode()
EXPECTED = "sha256=0515aef38c335301ca932fac48c14080989c8704b3776090e9e0b66c72f5b6ed"


def test_signature_matches_the_node_test_vector() -> None:
    assert webhook_signature(SECRET, BODY) == EXPECTED


def test_verification_accepts_exact_bytes_only() -> None:
    assert verify_webhook_signature(SECRET, BODY, EXPECTED)
    assert not verify_webhook_signature(SECRET, BODY + b" ", EXPECTED)
    assert not verify_webhook_signature("other", BODY, EXPECTED)
    assert not verify_webhook_signature(SECRET, BODY, None)
    assert not verify_webhook_signature(SECRET, b"\xff\xfe", EXPECTED)
    assert not verify_webhook_signature(SECRET, BODY, "sha256=ü")


def test_encode_uri_component_keeps_javascripts_unreserved_set() -> None:
    assert encode_uri_component("AZaz09-_.!~*'()") == "AZaz09-_.!~*'()"
    assert encode_uri_component(" /+?&=Ü") == "%20%2F%2B%3F%26%3D%C3%9C"
