"""The case catalogue, one module per spec area. Importing this package registers every case."""

from conformance.catalogue import (
    auth,
    client,
    envelope,
    errors,
    notify,
    search_async,
    search_sync,
    signatures,
    subscribe,
    txn,
)

__all__ = [
    "auth",
    "client",
    "envelope",
    "errors",
    "notify",
    "search_async",
    "search_sync",
    "signatures",
    "subscribe",
    "txn",
]
