"""`canonical_json` (msgspec fast path + rfc8785 fallback) is byte-identical to `rfc8785`."""

from __future__ import annotations

from typing import Any

import msgspec
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from dci_bridge.crypto.canonical import (
    CanonicalizationError,
    b64url_decode,
    b64url_encode,
    canonical_json,
)

# Text over all of Unicode (no lone surrogates, which JSON text cannot carry), weighted
# towards what changes canonical output: controls, escapes, BMP vs astral characters.
texts = st.one_of(
    st.text(
        st.one_of(
            st.characters(codec="utf-8"),
            st.sampled_from(
                ['"', "\\", "/", "\x00", "\x1f", "\x7f", "\u2028", "\ufb01", "😀", "é", "1", "."]
            ),
        ),
        max_size=12,
    ),
    # strings that look like what the fast path must find outside strings only
    st.sampled_from(["1.5", "1e5", "12345678901234567", 'a"1.5', "a\\", "true", "\\"]),
)
numbers = st.one_of(
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.integers(),  # beyond the IEEE range: both must refuse
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 0.1, 100.0]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)


def reference(value: Any) -> bytes | None:
    try:
        return bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError:
        return None


def ours(value: Any) -> bytes | None:
    try:
        return canonical_json(value)
    except CanonicalizationError:
        return None


@settings(max_examples=250, deadline=None)
@given(json_values)
def test_canonical_json_equals_the_reference_implementation(value: Any) -> None:
    assert ours(value) == reference(value)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_raw_json_canonicalises_like_its_value(value: Any) -> None:
    try:
        encoded = msgspec.json.encode(value)
    except (OverflowError, ValueError):
        return  # integers msgspec cannot write are not JSON we will ever receive
    assert ours(encoded) == reference(value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_b64url_round_trips(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="AQgw-_+/= \n.é0", max_size=12))
def test_b64url_accepts_only_canonical_encodings(text: str) -> None:
    """Whatever decodes is the one canonical encoding of what it decodes to."""
    try:
        data = b64url_decode(text)
    except ValueError:
        return
    assert b64url_encode(data) == text
