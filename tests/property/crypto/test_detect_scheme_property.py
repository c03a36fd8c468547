"""`detect_scheme` tells a compact JWS from a dci-signature exactly as the shape
`[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]+` (after stripping) says, for any text."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from dci_bridge.crypto.envelope import detect_scheme

_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+")
_PIECES = st.sampled_from(
    ["a", "Z", "0", "_", "-", ".", " ", "\n", "=", "+", "/", '"', ",", "é", "\u0661"]
)


@given(st.lists(_PIECES, max_size=12).map("".join))
@example("a.b.c")
@example("a..c")
@example(".b.c")
@example("a.b.")
@example(" a.b.c\n")
@example("a.b.c.d")
@example('keyId="k",algorithm="ed25519"')
def test_detect_scheme_is_the_jws_shape(text: str) -> None:
    expected = "jws" if _SHAPE.fullmatch(text.strip()) else "dci-signature"
    assert detect_scheme(text) == expected


@given(st.text(max_size=40))
def test_detect_scheme_on_any_text(text: str) -> None:
    expected = "jws" if _SHAPE.fullmatch(text.strip()) else "dci-signature"
    assert detect_scheme(text) == expected
