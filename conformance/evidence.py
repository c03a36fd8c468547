"""One HTTP exchange as evidence: what was sent, what came back, redacted and bounded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

MAX_BODY_CHARS = 64_000
"""Bodies longer than this are cut in reports; the cut is marked."""

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_FIELDS = frozenset({"client_secret", "access_token", "refresh_token", "password"})


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Hide credentials but keep enough to tell a missing header from a wrong one."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme, _, secret = value.partition(" ")
            out[name] = f"{scheme} ***({len(secret)} chars)" if secret else "***"
        else:
            out[name] = value
    return out


def redact_body(body: str) -> str:
    """Hide OAuth secrets in a form body (`client_secret=...`) or a JSON object
    (`"access_token": ...`); other bodies are returned as they are."""
    if not any(name in body for name in _SECRET_FIELDS):
        return body
    parsed = parse_json(body.encode())
    if isinstance(parsed, dict):
        if _SECRET_FIELDS.isdisjoint(parsed):
            return body  # evidence stays byte for byte unless there is something to hide
        return json.dumps({k: "***" if k in _SECRET_FIELDS else v for k, v in parsed.items()})
    if parsed is NOT_JSON and "=" in body and not body.lstrip().startswith(("{", "[")):
        pairs = parse_qsl(body, keep_blank_values=True)
        return urlencode([(k, "***" if k in _SECRET_FIELDS else v) for k, v in pairs], safe="*")
    return body


def bound(text: str) -> str:
    if len(text) <= MAX_BODY_CHARS:
        return text
    return text[:MAX_BODY_CHARS] + f"\n... [{len(text) - MAX_BODY_CHARS} more characters cut]"


def parse_json(raw: bytes) -> Any:
    """Parsed JSON or `NOT_JSON`."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return NOT_JSON


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"

    def __bool__(self) -> bool:
        return False


NOT_JSON: Any = _NotJson()
"""Marker for a body that is not JSON (distinct from JSON `null`)."""


@dataclass
class Exchange:
    """A request and its response (or the transport error that replaced it)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int = 0
    """HTTP status; 0 when no response arrived."""
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    response_json: Any = NOT_JSON
    error: str | None = None
    """Transport error (connection refused, timeout) when status is 0."""
    elapsed_ms: float = 0.0
    label: str = ""
    """What this exchange was for, e.g. "sync search" or "callback on-search"."""

    @property
    def content_type(self) -> str:
        for name, value in self.response_headers.items():
            if name.lower() == "content-type":
                return value
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": redact_headers(self.request_headers),
                "body": bound(redact_body(self.request_body)),
            },
            "response": {
                "status": self.status,
                "headers": dict(self.response_headers),
                "body": bound(redact_body(self.response_body)),
                "error": self.error,
                "elapsed_ms": round(self.elapsed_ms, 1),
            },
        }

    def summary(self) -> str:
        got = f"HTTP {self.status}" if self.status else f"no response ({self.error})"
        return f"{self.method} {self.url} -> {got}"
