"""Small ASGI helpers for the plain ASGI apps (simulator, receiver) outside Litestar."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["read_body"]

Receive = Callable[[], Awaitable[dict[str, Any]]]


async def read_body(receive: Receive, *, limit: int | None = None) -> bytes | None:
    """The whole body of an ASGI HTTP request, or None as soon as it grows past `limit`
    bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        chunk = event.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        chunks.append(chunk)
        if not event.get("more_body"):
            return b"".join(chunks)
