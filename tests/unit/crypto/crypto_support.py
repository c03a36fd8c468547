"""Constants and helpers shared by the crypto tests (a sample envelope, key sets)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from dci_bridge.crypto.jwk import KeySet, SigningKey

SENDER_ID = "spp.example.org"
START = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
ALGORITHMS = ("EdDSA", "ES256", "RS256")

HEADER: dict[str, Any] = {
    "version": "1.0.0",
    "message_id": "123456789020211216223812",
    "message_ts": "2025-06-01T12:00:00Z",
    "action": "search",
    "sender_id": SENDER_ID,
    "sender_uri": "https://spp.example.org/callback/on-search",
    "receiver_id": "crvs.example.org",
    "total_count": 1,
    "is_msg_encrypted": False,
}
MESSAGE: dict[str, Any] = {
    "transaction_id": "txn-1",
    "search_request": [
        {
            "reference_id": "ref-1",
            "timestamp": "2025-06-01T12:00:00Z",
            "search_criteria": {
                "reg_type": "ns:org:RegistryType:Civil",
                "query_type": "idtype-value",
                "query": {"type": "UIN", "value": "0000000000"},
                "sort": [{"attribute_name": "birth_date", "sort_order": "asc"}],
                "pagination": {"page_size": 10, "page_number": 1},
            },
        }
    ],
}


def keyset_of(*keys: SigningKey, sender_id: str | None = SENDER_ID) -> KeySet:
    """A sender's KeySet as we would build it from their published JWKS."""
    return KeySet.from_jwks({"keys": [dict(k.public.jwk) for k in keys]}, sender_id=sender_id)


def raw(value: Any) -> bytes:
    return msgspec.json.encode(value)
