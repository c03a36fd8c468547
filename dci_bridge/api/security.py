"""The HTTP side of message security: admission for registry endpoints, sealed responses,
the OAuth2 token endpoint and the JWKS document.

A registry controller does (see docs in /work/notes/INTERFACES.md):

```python
admission = await admit(request, scope=SCOPE_SEARCH)    # token, sender, signature, replay
message = decode_message("search", admission.message)   # the (decrypted) message JSON
...                                                      # the use case
return sealed_response(request, admission, header, response)  # encrypted if asked, signed
```
The use-case logic lives in `registry/security.py` (`SecurityService`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final
from urllib.parse import unquote

from litestar import Controller, Request, Response, get, post

from dci_bridge.api.state import BridgeState
from dci_bridge.crypto.tokens import SCOPE_SEARCH, SCOPE_SUBSCRIBE, SCOPE_TXN_STATUS
from dci_bridge.registry.security import Admission, OAuthError, SecurityService

__all__ = [
    "SCOPE_SEARCH",
    "SCOPE_SUBSCRIBE",
    "SCOPE_TXN_STATUS",
    "JwksController",
    "TokenController",
    "admit",
    "sealed_response",
    "security_of",
]

JSON: Final = "application/json"
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def security_of(request: Request[Any, Any, Any]) -> SecurityService:
    state: BridgeState = request.app.state.bridge
    return state.security


async def admit(request: Request[Any, Any, Any], *, scope: str) -> Admission:
    """Admit a registry request or raise the DCI error that refuses it (see
    `SecurityService.admit`): token and scope, envelope, sender, signature, replay guard,
    decryption. Call it first in the handler, after the Content-Type check."""
    security = security_of(request)
    return await security.admit(
        request.headers.get("authorization"),
        await request.body(),
        scope=scope,
    )


def sealed_response(
    request: Request[Any, Any, Any],
    admission: Admission,
    header: Any,
    message: Any,
    *,
    status_code: int = 200,
) -> Response[bytes]:
    """The signed (and, when the request was encrypted, encrypted) response envelope.

    Set `is_msg_encrypted=True` on `header` when `admission.encrypted`; `seal` encrypts the
    message and signs header and message in the sender's scheme.
    """
    body = security_of(request).seal(admission, header, message)
    return Response(body, status_code=status_code, media_type=JSON)


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """HTTP Basic client authentication (RFC 6749 2.3.1: form-urlencoded id and secret)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "unsupported client authentication", 401)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401)
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


class TokenController(Controller):
    path = "/oauth2/client"
    tags = ["Authentication"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @post(
        "/token",
        operation_id="oauth2_client_token",
        summary="OAuth2 client credentials: a short-lived bearer token for a registered client",
        status_code=200,
        opt={"dci_style": "plain"},
    )
    async def token(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """Errors here follow RFC 6749 section 5.2 (`{"error", "error_description"}`)."""
        security = security_of(request)
        try:
            basic = _basic_credentials(request.headers.get("authorization"))
            grant = await security.issue_token(
                await request.body(), request.headers.get("content-type"), basic
            )
        except OAuthError as exc:
            headers = dict(_NO_STORE)
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="dci-bridge"'
            return Response(exc.body(), status_code=exc.status, media_type=JSON, headers=headers)
        return Response(grant.body(), media_type=JSON, headers=_NO_STORE)


class JwksController(Controller):
    path = "/.well-known"
    tags = ["Authentication"]  # noqa: RUF012

    @get(
        "/jwks.json",
        operation_id="jwks",
        summary="The bridge's public keys: current and next signing keys, encryption keys",
        opt={"dci_style": "plain"},
    )
    async def jwks(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = security_of(request).public_jwks_json()
        return Response(body, media_type=JSON, headers={"Cache-Control": "max-age=300"})
