"""Small ASGI helpers for the plain ASGI apps (simulator, receiver) outside Litestar."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["read_body"]

Receive = Callable[[], Awaitable[dict[str, Any]]]


async def read_body(receive: Receive, *, limit: int | None = None) -> bytes:
    """The whole body of an ASGI HTTP request. With `limit`, reading stops once the body has
    grown past it, and what was read so far is returned."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        chunk = event.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not event.get("more_body") or (limit is not None and size > limit):
            return b"".join(chunks)
