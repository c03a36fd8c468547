"""Small ASGI helpers for the plain ASGI code outside Litestar (simulator, receiver, the
bridge's fast routes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["ClientDisconnected", "read_body"]

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientDisconnected(Exception):
    """The client went away before its request body was complete (`read_body(strict=True)`)."""


async def read_body(receive: Receive, *, limit: int | None = None, strict: bool = False) -> bytes:
    """The whole body of an ASGI HTTP request. With `limit`, reading stops once the body has
    grown past it, and what was read so far is returned. `strict`: a disconnect before the
    body is complete raises `ClientDisconnected` instead of returning what came."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if strict and event["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = event.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not event.get("more_body") or (limit is not None and size > limit):
            return b"".join(chunks)
