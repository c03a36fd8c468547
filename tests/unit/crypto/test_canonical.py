"""RFC 8785 canonical JSON, the signed-object forms and strict base64url."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import rfc8785

from dci_bridge.crypto.canonical import (
    CanonicalizationError,
    SignedContent,
    b64url_decode,
    b64url_encode,
    canonical_json,
)
from tests.unit.crypto.crypto_support import HEADER, MESSAGE, raw


def test_keys_are_sorted_and_whitespace_removed() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'


def test_raw_json_and_objects_canonicalise_the_same() -> None:
    pretty = b'{ "b" : 1,\n "a" : [ true , null , "\\u0078" ] }'
    assert canonical_json(pretty) == canonical_json({"a": [True, None, "x"], "b": 1})


def test_numbers_follow_ecmascript_formatting() -> None:
    assert canonical_json([1.0, 1e21, 1.5e-7, 0.1, -0.0, 100]) == b"[1,1e+21,1.5e-7,0.1,0,100]"


def test_strings_escape_only_what_rfc8785_escapes() -> None:
    value = {"s": 'é\u2028\x7f\x01\b\f\n\r\t"\\/😀'}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value) == '{"s":"é\u2028\x7f\\u0001\\b\\f\\n\\r\\t\\"\\\\/😀"}'.encode()


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+FF61 sorts after U+1F600 in code points, before it in UTF-16 (surrogate D83D).
    value = {"\uff61": 1, "😀": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("😀".encode()) < canonical_json(value).index(
        "\uff61".encode()
    )


def test_integers_beyond_ieee754_range_are_refused() -> None:
    assert canonical_json({"n": 2**53 - 1}) == b'{"n":9007199254740991}'
    with pytest.raises(CanonicalizationError):
        canonical_json({"n": 2**53 + 1})


def test_long_digit_strings_are_still_canonical() -> None:
    value = {"id": "12345678901234567890"}
    assert canonical_json(value) == b'{"id":"12345678901234567890"}'


def test_invalid_raw_json_is_a_canonicalization_error() -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(b'{"a":')


def test_structs_canonicalise_like_their_dicts() -> None:
    class Header(msgspec.Struct):
        message_id: str
        action: str

    assert canonical_json(Header("1", "search")) == b'{"action":"search","message_id":"1"}'


def test_signed_content_reuses_raw_parts_byte_for_byte() -> None:
    header, message = b'{"z": 1, "a": 2}', b"[1, 2]"
    content = SignedContent(header, msgspec.Raw(message))
    assert content.json() == b'{"header":{"z": 1, "a": 2},"message":[1, 2]}'
    assert content.canonical() == b'{"header":{"a":2,"z":1},"message":[1,2]}'


def test_signed_content_without_message_has_only_a_header() -> None:
    assert SignedContent({"a": 1}).json() == b'{"header":{"a":1}}'
    assert SignedContent({"a": 1}, None).json() == b'{"header":{"a":1},"message":null}'


def test_payload_matches_when_values_are_equal_whatever_the_formatting() -> None:
    content = SignedContent(raw(HEADER), raw(MESSAGE))
    reordered = {"message": MESSAGE, "header": dict(reversed(list(HEADER.items())))}
    assert content.matches_json(content.json())
    assert content.matches_json(msgspec.json.format(msgspec.json.encode(reordered), indent=2))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"header":{"a":1},"message":{"b":true}}',  # true where the envelope has 1
        b'{"header":{"a":1},"message":{"b":1},"extra":0}',
        b'{"header":{"a":1}}',
        b'[{"a":1}]',
        b"not json",
    ],
)
def test_payload_that_differs_in_value_or_type_does_not_match(payload: bytes) -> None:
    assert not SignedContent({"a": 1}, {"b": 1}).matches_json(payload)


def test_b64url_round_trip_and_no_padding() -> None:
    for size in range(6):
        data = bytes(range(250, 250 + size))
        text = b64url_encode(data)
        assert "=" not in text
        assert b64url_decode(text) == data


@pytest.mark.parametrize("text", ["QQ==", "QR", "Q", "a+b/", "QQ QQ", "Zm9v\n"])
def test_b64url_rejects_padding_other_alphabets_and_non_canonical_forms(text: str) -> None:
    # "QR" decodes to b"A" but is not its canonical encoding "QQ".
    with pytest.raises(ValueError, match="base64url"):
        b64url_decode(text)


def test_typical_envelopes_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long digit ids inside strings must not force the slow reference implementation."""
    calls: list[Any] = []
    real = rfc8785.dumps
    monkeypatch.setattr(rfc8785, "dumps", lambda v: calls.append(v) or real(v))
    envelope = {"header": HEADER, "message": MESSAGE}
    assert canonical_json(envelope) == real(envelope)
    assert calls == []
    assert canonical_json({"n": 1.5, "id": "123"}) == b'{"id":"123","n":1.5}'
    assert len(calls) == 1  # floats go the reference way
