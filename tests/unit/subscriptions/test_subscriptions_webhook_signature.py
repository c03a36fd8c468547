"""OpenCRVS webhook signature and handshake: the digest's test vector and the edge cases."""

from __future__ import annotations

import pytest

from dci_bridge.upstream.webhook import handshake_answer, sign_webhook, verify_webhook

SECRET = "c0ffee00-1111-4222-8333-444455556666"
BODY = (
    '{"timestamp":"2026-11-23T08:00:00.000Z","id":"9a0b7c1e-0000-4000-8000-000000000001",'
    '"event":{"hub":{"topic":"BIRTH_REGISTERED"},"context":[{"resourceType":"Bundle",'
    '"type":"document","entry":[],"note":"Ünïcode & spaces/+?\'()*!~"}]}}'
).encode()
EXPECTED = "sha256=0515aef38c335301ca932fac48c14080989c8704b3776090e9e0b66c72f5b6ed"


def test_signature_matches_the_node_test_vector():
    assert sign_webhook(SECRET, BODY) == EXPECTED
    assert verify_webhook(SECRET, BODY, EXPECTED)
    assert verify_webhook(SECRET, BODY, EXPECTED.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", EXPECTED[:-1], EXPECTED[:-1] + "0", "sha1=" + EXPECTED[7:], "zz"],
)
def test_other_headers_do_not_verify(header):
    assert not verify_webhook(SECRET, BODY, header)


def test_body_bytes_are_verified_as_received():
    assert not verify_webhook(SECRET, BODY + b" ", EXPECTED)
    assert not verify_webhook("other-secret", BODY, EXPECTED)
    assert not verify_webhook("", BODY, EXPECTED)
    assert not verify_webhook(SECRET, b"\xff\xfe", sign_webhook(SECRET, b"x"))


def test_handshake():
    assert handshake_answer("subscribe", "abc+/=", "DEATH_REGISTERED") == {"challenge": "abc+/="}
    bad = (
        (("unsubscribe", "a", None), "mode"),
        (("subscribe", "", None), "challenge"),
        (("subscribe", "a", "X"), "topic"),
    )
    for args, match in bad:
        with pytest.raises(ValueError, match=match):
            handshake_answer(*args)
