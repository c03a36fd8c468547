"""The one place where errors become DCI error bodies.

Every non-2xx answer carries `errors: [{code, message}]` (the standard's HttpErrorResponse).
Async endpoints add the Ack (`message.ack_status = ERR`), sync endpoints add the callback
header with `status: rjct` and, when one applies, the header `status_reason_code`
(docs/decisions.md, "Rejections"). Unexpected exceptions are logged with the request's
message id only and answered as `err.service.unavailable` without a stack trace.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from dci_bridge.clock import SystemClock, isoformat_z
from dci_bridge.errors import DciError, SchemaError
from dci_bridge.protocol.codec import encode, error_message, error_path

log = logging.getLogger("dci_bridge.api")

_STATUS_CODES = {
    400: "err.request.bad",
    401: "err.request.unauthorized",
    403: "err.request.forbidden",
    404: "err.request.not_found",
    405: "err.request.bad",
    408: "err.request.timeout",
    413: "err.request.bad",
    415: "err.request.bad",
    429: "err.request.too_many_requests",
}

_clock = SystemClock()


def schema_error(exc: msgspec.DecodeError | msgspec.ValidationError) -> SchemaError:
    """A msgspec failure as a SchemaError naming the field path (never the value)."""
    if isinstance(exc, msgspec.ValidationError):
        path = error_path(exc)
        return SchemaError(error_message(exc), path=path)
    return SchemaError("body is not valid JSON")


def error_body(
    error: DciError,
    *,
    style: str,
    registry_id: str,
    receiver_id: str | None = None,
    action: str = "on-search",
) -> dict[str, Any]:
    """The DCI body for an error; `style` is `async`, `sync` or `plain`."""
    message = str(error)[:999]
    now = isoformat_z(_clock.now())
    body: dict[str, Any] = {"errors": [{"code": error.code, "message": message}]}
    if style == "async":
        body["message"] = {
            "ack_status": "ERR",
            "timestamp": now,
            "error": {"code": error.code, "message": message},
            "correlation_id": str(uuid.uuid4()),
        }
    elif style == "sync":
        header: dict[str, Any] = {
            "version": "1.0.0",
            "message_id": str(uuid.uuid4()),
            "message_ts": now,
            "action": action,
            "status": "rjct",
            "status_reason_message": f"{error.code}: {message}"[:999],
            "sender_id": registry_id,
        }
        if error.reason:
            header["status_reason_code"] = error.reason
        if receiver_id:
            header["receiver_id"] = receiver_id
        body["header"] = header
    return body


def _style(request: Request[Any, Any, Any]) -> str:
    handler = request.scope.get("route_handler")
    style = handler.opt.get("dci_style") if handler is not None else None
    return style if isinstance(style, str) else "plain"


def _action(request: Request[Any, Any, Any]) -> str:
    """The callback action a sync endpoint answers with (`opt["dci_action"]`)."""
    handler = request.scope.get("route_handler")
    action = handler.opt.get("dci_action") if handler is not None else None
    return action if isinstance(action, str) else "on-search"


def _registry_id(request: Request[Any, Any, Any]) -> str:
    value = request.app.state.get("registry_id", "")
    return value if isinstance(value, str) else ""


def dci_error_parts(
    exc: DciError, *, style: str, registry_id: str, action: str = "on-search"
) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and extra headers of the answer to a `DciError`."""
    body = error_body(exc, style=style, registry_id=registry_id, action=action)
    headers = []
    if exc.code == "err.request.unauthorized":  # RFC 6750 section 3
        headers.append(("WWW-Authenticate", 'Bearer error="invalid_token"'))
    return exc.http_status, encode(body), headers


def handle_dci_error(request: Request[Any, Any, Any], exc: DciError) -> Response[bytes]:
    log.info("request rejected", extra={"code": exc.code, "path": request.url.path})
    status, body, headers = dci_error_parts(
        exc, style=_style(request), registry_id=_registry_id(request), action=_action(request)
    )
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers))


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    code = _STATUS_CODES.get(status, "err.request.bad")
    error = DciError(_http_message(status, exc), code=code)
    body = error_body(error, style=_style(request), registry_id=_registry_id(request))
    headers = dict(exc.headers or {})
    return Response(
        encode(body), status_code=status, media_type="application/json", headers=headers
    )


def _http_message(status: int, exc: HTTPException) -> str:
    if status == 404:
        return "no such endpoint"
    if status == 405:
        return "method not allowed on this endpoint"
    if status == 413:
        return "request body too large"
    return str(exc.detail)[:200] if exc.detail else "bad request"


def unexpected_parts(*, style: str, registry_id: str) -> tuple[int, bytes]:
    """Status and body of the answer to an unexpected exception (logged by the caller)."""
    error = DciError("the service could not process the request", code="err.service.unavailable")
    return 503, encode(error_body(error, style=style, registry_id=registry_id))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error(
        "unexpected error", extra={"path": request.url.path, "error_type": type(exc).__name__}
    )
    status, body = unexpected_parts(style=_style(request), registry_id=_registry_id(request))
    return Response(body, status_code=status, media_type="application/json")
