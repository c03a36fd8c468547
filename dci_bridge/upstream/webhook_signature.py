"""OpenCRVS v1.x webhook signatures (`X-Hub-Signature`), computed as OpenCRVS computes them.

`sha256=` + hex(HMAC-SHA256(key = sha_secret, msg = "sha256:" + encodeURIComponent(body))).
JavaScript's `encodeURIComponent` leaves `A-Z a-z 0-9 - _ . ! ~ * ' ( )` alone and
percent-encodes the UTF-8 bytes of everything else. Verify over the raw body bytes as
received, never a re-serialisation. Used by the simulator (signing) and by the notify
receiver (verifying).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

HEADER = "X-Hub-Signature"
_JS_URI_COMPONENT_SAFE = "-_.!~*'()"


def encode_uri_component(text: str) -> str:
    """JavaScript's `encodeURIComponent` (UTF-8 percent-encoding, JS's unreserved set)."""
    return quote(text, safe=_JS_URI_COMPONENT_SAFE)


def webhook_signature(sha_secret: str, raw_body: bytes) -> str:
    """The `X-Hub-Signature` header value OpenCRVS sends for `raw_body`.

    Raises `UnicodeDecodeError` for a body that is not UTF-8 (OpenCRVS only sends JSON text).
    """
    message = "sha256:" + encode_uri_component(raw_body.decode("utf-8"))
    digest = hmac.new(sha_secret.encode("utf-8"), message.encode("ascii"), hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_webhook_signature(sha_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True when `header` is the signature of `raw_body` under `sha_secret` (constant time)."""
    if not header:
        return False
    try:
        expected = webhook_signature(sha_secret, raw_body)
    except UnicodeDecodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))
