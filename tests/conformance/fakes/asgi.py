"""A minimal ASGI request/response layer for the test fakes (no framework on purpose)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from dci_bridge.ops.asgi import read_body


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int
    body: Any
    raw: bytes | None = None


Handler = Callable[[Request], Awaitable[Response]]


class App:
    """Routes (method, path) to async handlers; unknown routes get 404."""

    def __init__(self, routes: dict[tuple[str, str], Handler]) -> None:
        self.routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request = Request(scope["method"], scope["path"], headers, body)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            known = any(path == request.path for _, path in self.routes)
            response = Response(
                405 if known else 404, {"errors": [{"code": "not_found", "message": ""}]}
            )
        else:
            response = await handler(request)
        raw = response.raw if response.raw is not None else json.dumps(response.body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": raw})
