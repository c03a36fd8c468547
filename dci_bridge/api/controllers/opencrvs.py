"""OpenCRVS -> bridge: the v1.x webhook receiver and the v2 lifecycle-hook receiver.

`POST /opencrvs/webhooks`: the signature (`X-Hub-Signature`, HMAC of the configured
sha_secret) is checked first; a missing or wrong signature is 401 and nothing is stored.
Then the payload is checked and stored (`IngestService.receive_v1`) and answered at once:
202 for a new delivery, 200 for an exact re-delivery; a payload we cannot use is 400 and
quarantined. Processing (index, fan-out) happens after the answer.
`GET /opencrvs/webhooks?mode=subscribe&challenge=...&topic=...`: OpenCRVS' verification
handshake, answered `{"challenge": ...}`.
`POST /trigger/events/{event_type}/actions/{action}`: what a v2 country-config hook forwards,
authenticated with the configured bearer token (`opencrvs_webhook.v2_token`).
"""

from __future__ import annotations

import hmac
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, get, post, route
from litestar.enums import HttpMethod
from litestar.params import FromPath

from dci_bridge.api.state import BridgeState
from dci_bridge.errors import (
    RequestError,
    SignatureError,
    SignatureMissingError,
    UnauthorizedError,
    UpstreamError,
)
from dci_bridge.protocol.codec import encode
from dci_bridge.upstream.webhook import SIGNATURE_HEADER, handshake_answer, verify_webhook

JSON = "application/json"
V2_ACTIONS = frozenset({"REGISTER"})
"""v2 actions that make a record notifiable (others are acknowledged and ignored)."""


def _ingest_state(request: Request[Any, Any, Any]) -> BridgeState:
    state: BridgeState = request.app.state.bridge
    if state.ingest is None:
        raise UpstreamError("the OpenCRVS receiver is not configured on this bridge")
    return state


class OpencrvsWebhookController(Controller):
    path = "/opencrvs/webhooks"
    tags = ["OpenCRVS"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    # Litestar registers a controller's handlers one at a time, ordered by their qualified
    # names, and the OPTIONS answer it adds to a path by itself names only the methods
    # registered before it (here GET alone). This handler's name sorts first, so Litestar
    # adds none (tests/e2e/test_e2e_openapi_contract.py checks `Allow` on every path).
    @route("/", http_method=[HttpMethod.OPTIONS], include_in_schema=False)
    async def allow(self) -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})

    @get(
        "/",
        operation_id="opencrvs_webhook_handshake",
        summary="Answer OpenCRVS' webhook verification handshake",
        media_type=JSON,
    )
    async def handshake(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        query = request.query_params
        try:
            answer = handshake_answer(query.get("mode"), query.get("challenge"), query.get("topic"))
        except ValueError as exc:
            raise RequestError(f"not a webhook verification request: {exc}") from None
        return Response(encode(answer), media_type=JSON)

    @post(
        "/",
        operation_id="opencrvs_webhook",
        summary="Receive an OpenCRVS v1.x webhook delivery (birth/death registered)",
        status_code=202,
    )
    async def receive(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        state = _ingest_state(request)
        secret = state.settings.opencrvs_webhook.sha_secret
        if not secret:
            raise UpstreamError("no sha_secret is configured for OpenCRVS webhooks")
        body = await request.body()
        header = request.headers.get(SIGNATURE_HEADER.lower())
        if not header:
            raise SignatureMissingError(f"{SIGNATURE_HEADER} header is missing")
        if not verify_webhook(secret, body, header):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")
        assert state.ingest is not None
        received = await anyio.to_thread.run_sync(state.ingest.receive_v1, body)
        if state.ingest_loop is not None:
            state.ingest_loop.kick()
        status = "duplicate" if received.duplicate else "accepted"
        return Response(
            encode({"status": status, "id": received.inbox_id}),
            status_code=200 if received.duplicate else 202,
            media_type=JSON,
        )


class OpencrvsV2HookController(Controller):
    path = "/trigger/events"
    tags = ["OpenCRVS"]  # noqa: RUF012

    @post(
        "/{event_type:str}/actions/{action:str}",
        operation_id="opencrvs_v2_hook",
        summary="Receive an OpenCRVS v2 event document forwarded by a lifecycle hook",
        status_code=202,
    )
    async def receive(
        self, request: Request[Any, Any, Any], event_type: FromPath[str], action: FromPath[str]
    ) -> Response[bytes]:
        state = _ingest_state(request)
        token = state.settings.opencrvs_webhook.v2_token
        if not token:
            raise UpstreamError("no v2 hook token is configured")
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            raise UnauthorizedError("a valid bearer token is required")
        body = await request.body()
        if action.upper() not in V2_ACTIONS:
            return Response(encode({"status": "ignored"}), status_code=200, media_type=JSON)
        assert state.ingest is not None
        received = await anyio.to_thread.run_sync(
            state.ingest.receive_v2, event_type.lower(), action.upper(), body
        )
        if state.ingest_loop is not None:
            state.ingest_loop.kick()
        status = "duplicate" if received.duplicate else "accepted"
        return Response(
            encode({"status": status, "id": received.inbox_id}),
            status_code=200 if received.duplicate else 202,
            media_type=JSON,
        )
