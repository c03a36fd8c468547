"""The bytes that signatures cover: `{"header": ..., "message": ...}` as JSON, and base64url.

Both signature schemes sign the object `{"header": <header>, "message": <message>}`:
the attached JWS as plain compact JSON, the detached JWS and `dci-signature` as RFC 8785
canonical JSON. `SignedContent` holds one envelope's header and message (raw JSON bytes, as
cut out of the body by `msgspec.Raw`, or decoded objects/Structs) and computes each form at
most once, so a request never serialises the same JSON twice.

`canonical_json` is RFC 8785. The `rfc8785` package is the reference implementation but is
pure Python (about 0.6 ms for a 4 KiB search response); msgspec's sorted compact encoding is
byte-identical to it for JSON without floats, integers beyond 2**53 and non-BMP characters
(those sort differently in UTF-16), so those cases take the `rfc8785` path and the rest the
fast one (about 2% of the cost). tests/property/crypto checks the two agree on generated
JSON. One difference is left on purpose: a NaN or infinity in a value we are given (never in
decoded JSON, which cannot hold one) becomes `null`, as msgspec writes it on the wire, where
`rfc8785` refuses.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final

import msgspec
import rfc8785

__all__ = [
    "CanonicalizationError",
    "JsonInput",
    "SignedContent",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
]

JsonInput = Any
"""Raw JSON (`bytes`, `bytearray`, `memoryview`, `msgspec.Raw`) or a JSON-compatible value
(dicts, lists, str, int, float, bool, None, msgspec Structs)."""

_RAW_TYPES: Final = (bytes, bytearray, memoryview, msgspec.Raw)
_DECODER: Final = msgspec.json.Decoder()
_ENCODER: Final = msgspec.json.Encoder()
_SORTED_ENCODER: Final = msgspec.json.Encoder(order="sorted")
# The fast path cannot vouch for non-BMP characters (4-byte UTF-8 lead bytes: keys may sort
# differently under RFC 8785's UTF-16 ordering), floats (formatted differently) and integers
# of 16+ digits (RFC 8785 refuses those beyond 2**53). Numbers are looked for outside JSON
# strings only, since DCI ids are often long digit strings.
_ASTRAL_LEADS: Final = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_LONG_INTEGER: Final = re.compile(rb"[0-9]{16}")
_B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL_VALUES: Final = {char: value for value, char in enumerate(_B64URL_ALPHABET)}
_URLSAFE_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")


class CanonicalizationError(ValueError):
    """The value cannot be written as RFC 8785 JSON (for example an integer beyond 2**53)."""


def canonical_json(value: JsonInput) -> bytes:
    """RFC 8785 (JCS) canonical JSON of a JSON-compatible value or of raw JSON bytes."""
    if isinstance(value, _RAW_TYPES):
        value = _decode(value)
    try:
        fast = _SORTED_ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError, UnicodeError):
        fast = None
    if fast is not None and _is_exact(fast):
        return fast
    try:
        return bytes(rfc8785.dumps(msgspec.to_builtins(value)))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, OverflowError) as exc:
        raise CanonicalizationError(
            f"not representable as RFC 8785 JSON: {type(exc).__name__}"
        ) from None


def _is_exact(encoded: bytes) -> bool:
    """Whether msgspec's sorted compact JSON is already RFC 8785 (see the module docstring).

    Built from C-speed bytes operations: a regex pass costs more than the encoding itself.
    """
    if not encoded.isascii() and any(lead in encoded for lead in _ASTRAL_LEADS):
        return False
    if b'\\"' in encoded:  # a string holding a quote: splitting on quotes would misfire
        outside = _JSON_STRING.sub(b"", encoded)
    else:
        outside = b"".join(encoded.split(b'"')[0::2])
    outside = outside.replace(b"true", b"").replace(b"false", b"")
    if b"." in outside or b"e" in outside or b"E" in outside:
        return False
    return _LONG_INTEGER.search(outside) is None


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: only the alphabet, and only the canonical encoding.

    Rejecting non-canonical encodings (stray low bits in the last character) means no two
    different strings decode to the same signature bytes.
    """
    remainder = len(text) % 4
    if remainder == 1 or "+" in text or "/" in text or "=" in text:
        raise ValueError("not base64url")
    try:
        padded = text.encode("ascii").translate(_URLSAFE_TO_STANDARD) + b"=" * (-len(text) % 4)
        data = binascii.a2b_base64(padded, strict_mode=True)
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        raise ValueError("not base64url") from None
    if remainder and _B64URL_VALUES[text[-1]] & (0x0F if remainder == 2 else 0x03):
        raise ValueError("not canonical base64url")
    return data


def _decode(raw: Any) -> Any:
    try:
        return _DECODER.decode(raw)
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise CanonicalizationError(f"not valid JSON: {type(exc).__name__}") from None


class SignedContent:
    """The signed object `{"header": h, "message": m}` of one envelope, each form built once.

    `message` is `msgspec.UNSET` when the envelope has no message (callbacks may omit it);
    then the object is `{"header": h}`. JSON `null` is `None` and stays a member.
    Raises `CanonicalizationError` when a raw part is not JSON.
    """

    __slots__ = ("_canonical", "_header", "_json", "_message", "_sorted", "_value")

    def __init__(self, header: JsonInput, message: JsonInput = msgspec.UNSET) -> None:
        self._header = header
        self._message = message
        self._json: bytes | None = None
        self._canonical: bytes | None = None
        self._sorted: bytes | None = None
        self._value: dict[str, Any] | None = None

    @property
    def has_message(self) -> bool:
        return self._message is not msgspec.UNSET

    def json(self) -> bytes:
        """Compact JSON of the object, reusing raw parts byte for byte (the attached payload)."""
        if self._json is None:
            parts = [b'{"header":', _as_json(self._header)]
            if self.has_message:
                parts += [b',"message":', _as_json(self._message)]
            parts.append(b"}")
            self._json = b"".join(parts)
        return self._json

    def value(self) -> dict[str, Any]:
        """The object with raw parts decoded."""
        if self._value is None:
            value = {"header": _as_value(self._header)}
            if self.has_message:
                value["message"] = _as_value(self._message)
            self._value = value
        return self._value

    def canonical(self) -> bytes:
        """RFC 8785 canonical JSON of the object (the detached JWS and dci-signature input)."""
        if self._canonical is None:
            self._canonical = canonical_json(self.value())
        return self._canonical

    def sorted_json(self) -> bytes:
        """A type-exact comparison form: compact JSON with sorted keys.

        Two JSON texts with the same sorted form hold the same values with the same types
        (`true` never equals `1`, as it would under Python `==`).
        """
        if self._sorted is None:
            self._sorted = sorted_json(self.value())
        return self._sorted

    def matches_json(self, payload: bytes) -> bool:
        """Whether `payload` (an attached JWS payload) is JSON of this same object."""
        if payload == self.json():
            return True
        try:
            other = _DECODER.decode(payload)
        except (msgspec.DecodeError, ValueError):
            return False
        if not isinstance(other, dict):
            return False
        try:
            return sorted_json(other) == self.sorted_json()
        except CanonicalizationError:
            return False


def sorted_json(value: Any) -> bytes:
    """Compact JSON with object keys sorted; for comparing decoded values type-exactly."""
    try:
        return _SORTED_ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError, UnicodeError) as exc:
        raise CanonicalizationError(f"not encodable as JSON: {type(exc).__name__}") from None


def _as_json(part: Any) -> bytes:
    if isinstance(part, bytes):
        return part
    if isinstance(part, _RAW_TYPES):
        return bytes(part)
    try:
        return _ENCODER.encode(part)
    except (TypeError, ValueError, OverflowError, UnicodeError) as exc:
        raise CanonicalizationError(f"not encodable as JSON: {type(exc).__name__}") from None


def _as_value(part: Any) -> Any:
    if isinstance(part, _RAW_TYPES):
        return _decode(part)
    return part
