"""Synchronous replies: the `Ack` of an async request and the HTTP-layer `HttpErrorResponse`.

An Ack is not an envelope: no signature, no header, just `{"message": {...}}`.
"""

from __future__ import annotations

import msgspec

from dci_bridge.protocol.codes import AckStatus, ErrorCode
from dci_bridge.protocol.primitives import CorrelationId, DateTime, StatusReasonMessage


class ErrorInfo(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Why a message was refused (Error). The standard makes both fields optional."""

    code: ErrorCode | None = None
    message: StatusReasonMessage | None = None


class AckMessage(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """`ACK` (callback follows), `NACK` (no callback) or `ERR` (refused, see `error`)."""

    ack_status: AckStatus
    timestamp: DateTime
    error: ErrorInfo | None = None
    correlation_id: CorrelationId


class Ack(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """HTTP reply body to every async request (the standard's `Response`)."""

    message: AckMessage


class HttpError(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One HTTP-layer error: a code (we use the `err.*` codes) and a message."""

    code: str | None = None
    message: str | None = None


class HttpErrorResponse(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Body of a 4xx/5xx answer from the HTTP layer (HttpErrorResponse)."""

    errors: list[HttpError]
