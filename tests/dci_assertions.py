"""The one helper every negative test uses to check a DCI error answer."""

from __future__ import annotations

from typing import Any

import httpx


def assert_dci_error(
    response: httpx.Response,
    http_status: int,
    code: str,
    *,
    reason: str | None = None,
    style: str | None = None,
) -> dict[str, Any]:
    """Status, `errors[0].code`, and the endpoint style's extra part (sync header / async Ack)."""
    assert response.status_code == http_status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["errors"][0]["code"] == code, body
    assert body["errors"][0]["message"], body
    if style == "sync":
        header = body["header"]
        assert header["status"] == "rjct"
        assert header["action"] == "on-search"
        assert header.get("status_reason_code") == reason, header
    elif style == "async":
        ack = body["message"]
        assert ack["ack_status"] == "ERR"
        assert ack["error"]["code"] == code
        assert ack["correlation_id"]
    return body
