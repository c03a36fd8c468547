"""Sample DCI bodies shared by the protocol unit tests."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from dci_bridge.protocol import codec

TS = "2025-03-01T10:00:00Z"
HEADER: dict[str, Any] = {
    "message_id": "m-1",
    "message_ts": TS,
    "action": "search",
    "sender_id": "spp.example.org",
    "total_count": 1,
}
ITEM: dict[str, Any] = {
    "reference_id": "r-1",
    "timestamp": TS,
    "search_criteria": {
        "query_type": "idtype-value",
        "query": {"type": "UIN", "value": "123"},
    },
}
MESSAGE: dict[str, Any] = {"transaction_id": "t-1", "search_request": [ITEM]}


def body(header: dict[str, Any] | None = None, message: Any = MESSAGE, **extra: Any) -> bytes:
    return json.dumps(
        {"header": {**HEADER, **(header or {})}, "message": message, **extra}
    ).encode()


def rejection(call: Any, *args: Any) -> str | None:
    with pytest.raises(msgspec.ValidationError) as info:
        call(*args)
    return codec.error_path(info.value)
