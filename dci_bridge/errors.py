"""The one exception tree of dci-bridge, mapped to the DCI error format at the edge.

```
DciError                      code: str, http_status: int, message: str, path: str | None
  RequestError                err.request.bad (400)
    SchemaError               a body that does not decode into the standard's shape (400)
    VersionError              err.version.not_supported (400)
    PayloadTooLargeError      err.request.bad (413)
    UnsupportedMediaTypeError err.request.bad (415)
    UnauthorizedError         err.request.unauthorized (401)
    ForbiddenError            err.request.forbidden (403)
    NotFoundError             err.request.not_found (404)
    TooManyRequestsError      err.request.too_many_requests (429)
    SenderError               err.sender_id.invalid (403)
    SenderUriError            err.sender_uri.invalid (400)
    ReceiverError             err.receiver_id.invalid (400)
  SignatureError              err.signature.invalid (401)
    SignatureMissingError     err.signature.missing (401)
  EncryptionError             err.encryption.invalid (400)
    DuplicateMessageError     err.request.bad (409), reason rjct.message_id.duplicate
  UpstreamError               err.service.unavailable (503)
    UpstreamTimeoutError      err.request.timeout (504)
ItemRejection                 a per-item `rjct.*` reason inside a batch; a value, never escapes
                              a use case (one bad search item never fails its neighbours)
```
Any error may also carry `reason`, the header-level `rjct.*` status reason code a sync
endpoint puts in its callback header (`rjct.version.invalid`, `rjct.total_count.invalid`, ...).
Layers raise these with the offending field path; `api/errors.py` turns any `DciError` into
the DCI body once. Messages never contain personal data: they name fields, not values.
"""

from __future__ import annotations

from typing import ClassVar


class DciError(Exception):
    """Base of every error that has a DCI code and an HTTP status."""

    code: ClassVar[str] = "err.service.unavailable"
    http_status: ClassVar[int] = 500

    reason: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        # An instance may refine its class's code or header reason.
        if code is not None:
            self.code = code  # type: ignore[misc]
        if reason is not None:
            self.reason = reason  # type: ignore[misc]

    def __str__(self) -> str:
        return f"{self.message} at {self.path}" if self.path else self.message


class RequestError(DciError):
    code = "err.request.bad"
    http_status = 400


class SchemaError(RequestError):
    """The body is not valid JSON or does not match the standard's schema."""


class VersionError(RequestError):
    code = "err.version.not_supported"
    reason = "rjct.version.invalid"


class DuplicateMessageError(RequestError):
    http_status = 409
    reason = "rjct.message_id.duplicate"


class PayloadTooLargeError(RequestError):
    http_status = 413


class UnsupportedMediaTypeError(RequestError):
    http_status = 415


class UnauthorizedError(RequestError):
    code = "err.request.unauthorized"
    http_status = 401


class ForbiddenError(RequestError):
    code = "err.request.forbidden"
    http_status = 403


class NotFoundError(RequestError):
    code = "err.request.not_found"
    http_status = 404


class TooManyRequestsError(RequestError):
    code = "err.request.too_many_requests"
    http_status = 429


class SenderError(RequestError):
    code = "err.sender_id.invalid"
    http_status = 403


class SenderUriError(RequestError):
    code = "err.sender_uri.invalid"


class ReceiverError(RequestError):
    code = "err.receiver_id.invalid"


class SignatureError(DciError):
    code = "err.signature.invalid"
    http_status = 401


class SignatureMissingError(SignatureError):
    code = "err.signature.missing"


class EncryptionError(DciError):
    code = "err.encryption.invalid"
    http_status = 400


class UpstreamError(DciError):
    code = "err.service.unavailable"
    http_status = 503


class UpstreamTimeoutError(UpstreamError):
    code = "err.request.timeout"
    http_status = 504


class ItemRejection(Exception):
    """A per-item rejection (`rjct.*`), turned into a `status: rjct` item by the use case."""

    def __init__(self, code: str, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
