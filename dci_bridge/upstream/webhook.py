"""OpenCRVS v1.x webhooks, as OpenCRVS' webhooks service speaks them.

Signature: OpenCRVS sends `X-Hub-Signature: sha256=<hex>` where the hex is
`HMAC-SHA256(key=sha_secret, msg="sha256:" + encodeURIComponent(raw_body))`. JavaScript's
`encodeURIComponent` leaves `A-Z a-z 0-9 - _ . ! ~ * ' ( )` alone and percent-encodes the
UTF-8 bytes of everything else, which is `urllib.parse.quote(text, safe="-_.!~*'()")`.
Verification is over the body bytes exactly as received (never re-serialised) and in
constant time. The same function signs, so the simulator and tests produce what OpenCRVS
produces.

Handshake: before storing a subscription OpenCRVS calls
`GET <callback>?mode=subscribe&challenge=<base64>&topic=<TOPIC>` and expects
`{"challenge": "<challenge>"}` back (`handshake_answer`).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

__all__ = [
    "SIGNATURE_HEADER",
    "TOPICS",
    "handshake_answer",
    "sign_webhook",
    "verify_webhook",
]

SIGNATURE_HEADER = "X-Hub-Signature"
TOPICS = frozenset(
    {
        "BIRTH_REGISTERED",
        "DEATH_REGISTERED",
        "BIRTH_CERTIFIED",
        "DEATH_CERTIFIED",
        "BIRTH_CORRECTED",
        "DEATH_CORRECTED",
    }
)
"""Topics OpenCRVS accepts in a subscription (only the two `*_REGISTERED` ever fire)."""

_JS_URI_COMPONENT_SAFE = "-_.!~*'()"


def _digest(secret: str, body: bytes) -> str:
    text = body.decode("utf-8")
    message = "sha256:" + quote(text, safe=_JS_URI_COMPONENT_SAFE)
    return hmac.new(secret.encode("utf-8"), message.encode("ascii"), hashlib.sha256).hexdigest()


def sign_webhook(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature` header value OpenCRVS sends with this body."""
    return "sha256=" + _digest(secret, body)


def verify_webhook(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is OpenCRVS' signature of `body` under `secret` (constant time).

    A missing header, another algorithm prefix, malformed hex or a body that is not UTF-8
    all verify as False.
    """
    if not secret or not header:
        return False
    scheme, _, given = header.strip().partition("=")
    if scheme.lower() != "sha256" or len(given) != 64:
        return False
    try:
        expected = _digest(secret, body)
    except UnicodeDecodeError:
        return False
    return hmac.compare_digest(expected, given.lower())


def handshake_answer(mode: str | None, challenge: str | None, topic: str | None) -> dict[str, str]:
    """The JSON answer to OpenCRVS' verification GET; raises ValueError when it is not one."""
    if mode != "subscribe":
        raise ValueError("mode must be subscribe")
    if not challenge:
        raise ValueError("challenge is missing")
    if topic is not None and topic not in TOPICS:
        raise ValueError("unknown topic")
    return {"challenge": challenge}
