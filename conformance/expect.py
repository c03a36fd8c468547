"""Assertions cases share. Each raises `Failure` with a message "Expected X, got Y at $.path".

Functional cases read only the fields they need (a schema problem is reported once, by the
envelope group, not by every case that touches the response).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformance.checks import Failure, Severity
from conformance.context import CaseContext
from conformance.evidence import NOT_JSON, Exchange
from conformance.receiver import Callback, for_transaction
from conformance.signing import SignatureProblem

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def dig(obj: Any, path: str) -> Any:
    """`dig(body, "message.search_response[0].status")`; None when any step is missing."""
    for name, index in _PATH_PART.findall(path):
        if name:
            obj = obj.get(name) if isinstance(obj, dict) else None
        else:
            i = int(index)
            obj = obj[i] if isinstance(obj, list) and i < len(obj) else None
        if obj is None:
            return None
    return obj


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def no_server_error(ex: Exchange, what: str) -> None:
    """5xx or no answer is always CRITICAL: the standard's errors are 4xx or in-band."""
    if ex.status == 0:
        raise Failure(
            f"{what}: no response",
            f"Expected an HTTP response, got none ({ex.error})",
            severity=Severity.CRITICAL,
            exchange=ex,
        )
    if ex.status >= 500:
        raise Failure(
            f"{what}: server error",
            f"Expected no 5xx, got HTTP {ex.status}",
            severity=Severity.CRITICAL,
            exchange=ex,
        )


def success(ex: Exchange, what: str, *, allowed: Iterable[int] = (200, 202)) -> dict[str, Any]:
    """A 2xx JSON object body; anything else fails."""
    no_server_error(ex, what)
    allowed_set = set(allowed)
    if ex.status not in allowed_set:
        detail = describe_error_body(ex.response_json)
        raise Failure(
            f"{what}: not accepted",
            f"Expected HTTP {'/'.join(map(str, sorted(allowed_set)))}, got HTTP {ex.status}"
            + (f" ({detail})" if detail else ""),
            exchange=ex,
        )
    body = ex.response_json
    if not isinstance(body, dict):
        got = "a body that is not JSON" if body is NOT_JSON else f"JSON {type(body).__name__}"
        raise Failure(f"{what}: no JSON object", f"Expected a JSON object, got {got}", exchange=ex)
    return body


def describe_error_body(body: Any) -> str:
    code = dig(body, "message.error.code") or dig(body, "errors[0].code")
    reason = dig(body, "header.status_reason_code")
    return str(code or reason or "")


def schema(ctx: CaseContext, name: str, instance: Any, exchange: Exchange, what: str) -> None:
    problems = ctx.schemas.violations(name, instance)
    if problems:
        raise Failure(
            f"{what}: schema violation",
            "; ".join(str(p) for p in problems),
            severity=Severity.HIGH,
            exchange=exchange,
            expected=f"a valid {name} ({ctx.schemas.source} schemas)",
        )


def field(
    body: Any, path: str, exchange: Exchange, what: str, kind: type | tuple[type, ...] = object
) -> Any:
    """The value at `path`, which must exist and be of `kind`."""
    value = dig(body, path)
    if value is None or not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) and kind is not object else "a value"
        if isinstance(kind, tuple):
            want = " or ".join(k.__name__ for k in kind)
        raise Failure(
            what,
            f"Expected {want}, got {_short(value) if value is not None else 'nothing'} at $.{path}",
            exchange=exchange,
        )
    return value


def ack(ex: Exchange, what: str, *, statuses: Iterable[str] = ("ACK",)) -> dict[str, Any]:
    """The Ack's `message` of an accepted async request (HTTP 200/202, ack_status in statuses)."""
    body = success(ex, what)
    status = dig(body, "message.ack_status")
    wanted = tuple(statuses)
    if status not in wanted:
        code = describe_error_body(body)
        raise Failure(
            f"{what}: not acknowledged",
            f"Expected ack_status {' or '.join(wanted)}, got {_short(status)}"
            + (f" ({code})" if code else "")
            + " at $.message.ack_status",
            exchange=ex,
        )
    correlation = dig(body, "message.correlation_id")
    if not isinstance(correlation, str) or not correlation:
        raise Failure(
            f"{what}: no correlation_id",
            f"Expected a correlation_id, got {_short(correlation)} at $.message.correlation_id",
            exchange=ex,
        )
    message: dict[str, Any] = body["message"]
    return message


def signature(ctx: CaseContext, envelope: Any, exchange: Exchange, what: str) -> str:
    """Verify against the target's JWKS; return the scheme used."""
    verifier = ctx.verifier()
    try:
        return verifier.verify(envelope)
    except SignatureProblem as exc:
        raise Failure(
            f"{what}: signature",
            str(exc),
            severity=Severity.HIGH,
            exchange=exchange,
            expected="a signature over {header, message} verifying with the target's JWKS",
        ) from exc


@dataclass(frozen=True)
class Rejection:
    how: str
    """ack-err | http-error | header-rjct | item-rjct | callback-rjct"""
    code: str


def rejected(
    ctx: CaseContext,
    ex: Exchange,
    what: str,
    *,
    codes: Iterable[str] = ("err.request.bad",),
    header_codes: Iterable[str] = (),
    item_codes: Iterable[str] = (),
    items_path: str = "message.search_response",
    callback_action: str | None = None,
) -> Rejection:
    """The standard's error for a bad request, in any of the forms the standard allows.

    Accepted: an Ack with ack_status ERR and `error.code` in `codes` (HTTP 200/202 or 4xx);
    an HttpErrorResponse with such a code (HTTP 4xx); a response envelope whose header
    status is rjct with a code in `header_codes`; response items with status rjct and a code
    in `item_codes` (sync); or, for async endpoints, an ACK followed by a callback
    (`callback_action`) whose items are rjct with a code in `item_codes`.
    """
    no_server_error(ex, what)
    codes, header_codes, item_codes = set(codes), set(header_codes), set(item_codes)
    body = ex.response_json
    want = sorted(codes | header_codes | item_codes)
    expected = f"a rejection with one of {', '.join(want)}"

    def fail(got: str, severity: Severity = Severity.HIGH) -> Failure:
        return Failure(
            f"{what}: not rejected as the standard requires",
            f"Expected {expected}, got {got}",
            severity=severity,
            exchange=ex,
            expected=expected,
        )

    ack_status = dig(body, "message.ack_status")
    if ack_status == "ERR":
        code = dig(body, "message.error.code")
        if code in codes and (ex.status in (200, 202) or 400 <= ex.status < 500):
            return Rejection("ack-err", str(code))
        raise fail(f"HTTP {ex.status} ERR with {_short(code)} at $.message.error.code")
    if 400 <= ex.status < 500:
        errors = dig(body, "errors")
        if isinstance(errors, list):
            found = [e.get("code") for e in errors if isinstance(e, dict)]
            hit = next((c for c in found if c in codes), None)
            if hit:
                return Rejection("http-error", str(hit))
            raise fail(f"HTTP {ex.status} with error codes {found} at $.errors")
        header_code = dig(body, "header.status_reason_code")
        if dig(body, "header.status") == "rjct" and header_code in header_codes:
            return Rejection("header-rjct", str(header_code))
        raise fail(
            f"HTTP {ex.status} without the standard's error body: {_short(ex.response_body)}",
            Severity.MEDIUM,
        )
    if ex.status not in (200, 202):
        raise fail(f"HTTP {ex.status}")
    if dig(body, "header.status") == "rjct":
        header_code = dig(body, "header.status_reason_code")
        if header_code in header_codes:
            return Rejection("header-rjct", str(header_code))
        if not item_codes:
            raise fail(
                f"header status rjct with {_short(header_code)} at $.header.status_reason_code"
            )
    items = dig(body, items_path)
    if item_codes and isinstance(items, list) and items:
        return _items_rejected(items, item_codes, items_path, fail, "item-rjct")
    if ack_status in ("ACK", "NACK") and callback_action and item_codes:
        return _callback_rejected(ctx, ex, callback_action, item_codes, items_path, fail)
    raise fail(
        f"HTTP {ex.status} {('ack_status ' + str(ack_status)) if ack_status else 'accepted'}"
    )


def _items_rejected(
    items: list[Any], item_codes: set[str], path: str, fail: Any, how: str
) -> Rejection:
    for i, item in enumerate(items):
        status = dig(item, "status")
        code = dig(item, "status_reason_code")
        if status == "rjct" and code in item_codes:
            return Rejection(how, str(code))
        if status != "rjct":
            raise fail(f"status {_short(status)} at $.{path}[{i}].status")
    raise fail(f"status_reason_code {_short(dig(items[0], 'status_reason_code'))} at $.{path}[0]")


def _callback_rejected(
    ctx: CaseContext, ex: Exchange, action: str, item_codes: set[str], path: str, fail: Any
) -> Rejection:
    if ctx.receiver is None:
        ctx.skip(
            "acknowledged; the rejection could only be seen in the callback, receiver disabled"
        )
    request = _request_json(ex)
    txn = dig(request, "message.transaction_id")
    callback = ctx.wait_callback(
        for_transaction(str(txn), action), f"an {action} callback carrying the rejection", after=ex
    )
    items = dig(callback.json, path)
    if not isinstance(items, list) or not items:
        raise fail(f"ACK, then a callback without items at $.{path}")
    return _items_rejected(items, item_codes, path, fail, "callback-rjct")


def _request_json(ex: Exchange) -> Any:
    import json

    try:
        return json.loads(ex.request_body)
    except ValueError:
        return None


def callback_for(ctx: CaseContext, ex: Exchange, action: str, what: str) -> Callback:
    """Wait for the callback of the request sent in `ex` (matched by its transaction_id)."""
    txn = dig(_request_json(ex), "message.transaction_id")
    return ctx.wait_callback(for_transaction(str(txn), action), what, after=ex)
