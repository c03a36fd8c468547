"""The request observer: one metrics sample and one access-log line per HTTP request.

It wraps the whole Litestar ASGI handler (`install(app, ...)`), so 404s, 405s and errors
rendered by the exception handlers are counted too. The route label is Litestar's route
template (`scope["path_template"]`, set by the router), never the raw path; unrouted
requests are labelled `unmatched`. Controllers call `note_message(request, header)` once the
DCI header is decoded so the log line carries `message_id`, `sender_id` and `action` without
decoding the body a second time. Nothing else of the request is logged: no path parameters,
no query string, no body.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Litestar, Request
from litestar.types import ASGIApp, Message, Receive, Send

from dci_bridge.ops import metrics
from dci_bridge.ops.logs import ACCESS_LOGGER

_log = logging.getLogger(ACCESS_LOGGER)
_STATE_KEY = "dci_message"


def note_message(request: Request[Any, Any, Any], header: Any) -> None:
    """Remember the DCI header's ids for the access log (any struct with these fields)."""
    remember_message(request.scope["state"], header)


def remember_message(state: dict[str, Any], header: Any) -> None:
    """`note_message` given the request scope's `state`."""
    state[_STATE_KEY] = (
        getattr(header, "message_id", None),
        getattr(header, "sender_id", None),
        getattr(header, "action", None),
    )


class RequestObserver:
    """ASGI wrapper: time the request, capture the status, then count and log it."""

    __slots__ = ("app", "metrics_enabled")

    def __init__(self, app: ASGIApp, *, metrics_enabled: bool) -> None:
        self.app = app
        self.metrics_enabled = metrics_enabled

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        done = False

        def finish() -> None:
            nonlocal done
            done = True
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = scope["method"]
            if self.metrics_enabled:
                metrics.observe_request(method, route, status, elapsed)
            if _log.isEnabledFor(logging.INFO):
                _log_request(scope, method, route, status, elapsed)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finish()  # before the last byte leaves: the client never outruns the count
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not done:
                finish()


def _log_request(scope: Any, method: str, route: str, status: int, elapsed: float) -> None:
    message_id = sender_id = action = None
    noted = scope.get("state", {}).get(_STATE_KEY)
    if noted is not None:
        message_id, sender_id, action = noted
    fields = {
        "method": method,
        "route": route,
        "status": status,
        "latency_ms": round(elapsed * 1000, 2),
        "message_id": message_id,
        "sender_id": sender_id,
        "action": action,
    }
    # makeRecord + handle: `_log.info` would also walk the stack to find the caller
    _log.handle(
        _log.makeRecord(
            _log.name, logging.INFO, "", 0, "request", (), None, None, {"fields": fields}
        )
    )


def install(app: Litestar, *, metrics_enabled: bool) -> None:
    """Wrap the app's ASGI handler (after Litestar built it, around its exception handler)."""
    app.asgi_handler = RequestObserver(app.asgi_handler, metrics_enabled=metrics_enabled)


def count_search_results(items: Any) -> None:
    """Metrics for answered search items (`SearchResponseItem`s): status and records."""
    for item in items:
        data = item.data
        metrics.record_search_results(str(item.status), len(data.reg_records) if data else 0)
