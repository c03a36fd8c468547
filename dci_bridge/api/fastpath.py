"""Hot routes answered before Litestar's router: `POST /registry/sync/search`.

For every request Litestar builds a `Request`, resolves the handler's signature, wraps the
answer in a `Response` and renders it through its response classes. With the same two
upstream calls behind it, a bare endpoint costs 0.44 ms CPU per request as a Litestar
handler and 0.35 ms as plain ASGI (docs/benchmarks.md): the difference is a tenth of the
bridge's budget of 1 ms for a signed search through OpenCRVS. So the hottest route is a
plain ASGI function: `FastRoutes` sits inside the request observer (metrics and the access
line still see every request) and in front of Litestar, and answers the routes it knows
with the same behaviour as their Litestar handlers: the same function makes the answer, a
non-JSON Content-Type is refused before the body is read (415), a body over
`server.max_body_bytes` is refused (413), and errors become the same DCI error bodies
(`api.errors.dci_error_parts`). The Litestar route of the same path stays declared: it
documents the endpoint in the OpenAPI document, and `server.fast_routes = false` sends
every request through Litestar again. Litestar middleware and hooks do not run for a fast
route: the app configures none today; one added later must be applied here too (or the
route taken out of the fast table).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar
from litestar.types import ASGIApp, Receive, Send

from dci_bridge.api.errors import dci_error_parts, unexpected_parts
from dci_bridge.api.state import BridgeState
from dci_bridge.errors import DciError, PayloadTooLargeError, UnsupportedMediaTypeError
from dci_bridge.ops.asgi import ClientDisconnected, read_body

__all__ = ["FastRoute", "FastRoutes", "Incoming", "check_json"]

log = logging.getLogger("dci_bridge.api")

JSON_MEDIA = "application/json"
_JSON_HEADER = (b"content-type", b"application/json")


def check_json(content_type: str | None) -> None:
    """DCI bodies are JSON: anything else is refused with 415 (before the body is read)."""
    if (content_type or "").split(";", 1)[0].strip().lower() != JSON_MEDIA:
        raise UnsupportedMediaTypeError("Content-Type must be application/json")


class Incoming(msgspec.Struct, frozen=True):
    """What a hot route's answer depends on: the bearer credentials, the body, and the
    request's state (where `observe.remember_message` leaves ids for the access line)."""

    authorization: str | None
    body: bytes
    notes: dict[str, Any]


Answer = Callable[[BridgeState, Incoming], Awaitable[bytes]]
"""Makes a 200 answer's JSON body, or raises a `DciError`."""


@dataclass(frozen=True, slots=True)
class FastRoute:
    path: str
    answer: Answer
    style: str
    """The DCI error style of the route (`sync`, `async`, `plain`: `api.errors.error_body`)."""
    action: str = "on-search"


class FastRoutes:
    """ASGI wrapper: answers POSTs to its routes, passes everything else to `app`."""

    __slots__ = ("app", "litestar", "max_body", "routes")

    def __init__(
        self, app: ASGIApp, litestar: Litestar, routes: Mapping[str, FastRoute], max_body: int
    ) -> None:
        self.app = app
        self.litestar = litestar
        self.routes = dict(routes)
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["path_template"] = route.path  # the metrics label, as Litestar's router sets it
        state: BridgeState = self.litestar.state.bridge
        extra: list[tuple[bytes, bytes]] = []
        try:
            incoming = await self._incoming(scope, receive)
            body = await route.answer(state, incoming)
            status = 200
        except ClientDisconnected:
            return  # nobody to answer
        except DciError as exc:
            log.info("request rejected", extra={"code": exc.code, "path": route.path})
            status, body, headers = dci_error_parts(
                exc,
                style=route.style,
                registry_id=state.settings.registry.registry_id,
                action=route.action,
            )
            extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        except Exception as exc:
            log.error(
                "unexpected error", extra={"path": route.path, "error_type": type(exc).__name__}
            )
            status, body = unexpected_parts(
                style=route.style, registry_id=state.settings.registry.registry_id
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    _JSON_HEADER,
                    (b"content-length", str(len(body)).encode("ascii")),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _incoming(self, scope: Any, receive: Receive) -> Incoming:
        content_type = authorization = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        check_json(content_type)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise PayloadTooLargeError("request body too large")
        body = await read_body(receive, limit=self.max_body, strict=True)  # type: ignore[arg-type]
        if len(body) > self.max_body:
            raise PayloadTooLargeError("request body too large")
        return Incoming(authorization, body, scope.setdefault("state", {}))


def install(app: Litestar, routes: Mapping[str, FastRoute], *, max_body: int) -> None:
    """Put the fast routes in front of the app's ASGI handler (install before the observer,
    so that it wraps them too)."""
    app.asgi_handler = FastRoutes(app.asgi_handler, app, routes, max_body)
