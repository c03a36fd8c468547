"""`POST /registry/subscribe` and `/registry/unsubscribe`: admit, check, store, ack.

Both go through the admission pipeline (token with the `subscribe` scope, registered sender,
signature, replay guard, decryption) and answer with the DCI Ack (`ACK` and a fresh
correlation id) once the change and its callback (`on-subscribe` / `on-unsubscribe`, queued
on the outbox in the same transaction) are committed. Per-item problems (unknown filter
attribute, unknown location, expiry in the past, over the sender's limit...) are answered in
the callback with the standard's reason codes; envelope problems are an `ERR` Ack (HTTP 4xx).
The subscription belongs to the admitted sender.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, post

from dci_bridge.api.controllers.async_ops import _kick, _target, decode_action
from dci_bridge.api.controllers.search import require_json
from dci_bridge.api.observe import note_message
from dci_bridge.api.security import SCOPE_SUBSCRIBE, admit
from dci_bridge.api.state import BridgeState
from dci_bridge.clock import SystemClock, isoformat_z
from dci_bridge.errors import SenderUriError, UpstreamError
from dci_bridge.protocol.ack import Ack, AckMessage
from dci_bridge.protocol.codec import encode
from dci_bridge.protocol.codes import AckStatus
from dci_bridge.protocol.subscribe import SubscribeRequest, UnSubscribeRequest
from dci_bridge.registry.async_ops import CallbackTarget
from dci_bridge.registry.search import check_header
from dci_bridge.registry.subscriptions import SubscriptionService

JSON = "application/json"
_clock = SystemClock()


def _ack(correlation_id: str, status: AckStatus = AckStatus.ACK) -> Response[bytes]:
    ack = Ack(
        message=AckMessage(
            ack_status=status,
            timestamp=isoformat_z(_clock.now()),
            correlation_id=correlation_id,
        )
    )
    return Response(encode(ack), status_code=200, media_type=JSON)


def _service(state: BridgeState) -> SubscriptionService:
    if state.subscriptions is None:
        raise UpstreamError("subscriptions are not available on this bridge")
    return state.subscriptions


class SubscribeController(Controller):
    path = "/registry"
    tags = ["Async"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @post(
        "/subscribe",
        operation_id="subscribe",
        summary="Subscribe to registered vital events; on-subscribe follows",
        status_code=200,
        opt={"dci_style": "async", "dci_schemas": ("subscribe.request", "ack")},
    )
    async def subscribe(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        require_json(request)
        state: BridgeState = request.app.state.bridge
        admission = await admit(request, scope=SCOPE_SUBSCRIBE)
        header = admission.header
        note_message(request, header)
        message = decode_action(header, admission.message, "subscribe")
        count = len(message.subscribe_request) if isinstance(message, SubscribeRequest) else 0
        check_header(header, action="subscribe", items=count, settings=state.settings)
        assert isinstance(message, SubscribeRequest)
        service = _service(state)
        target = await _target(state, header)
        correlation_id = await _run(
            functools.partial(
                service.handle_subscribe,
                header,
                message,
                sender_id=header.sender_id,
                callback_url=target.url,
                scheme=target.scheme,
                encrypt=admission.encrypted,
            )
        )
        _kick(state)
        return _ack(correlation_id)

    @post(
        "/unsubscribe",
        operation_id="unsubscribe",
        summary="Cancel subscriptions by code; on-unsubscribe follows",
        status_code=200,
        opt={"dci_style": "async", "dci_schemas": ("unsubscribe.request", "ack")},
    )
    async def unsubscribe(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        require_json(request)
        state: BridgeState = request.app.state.bridge
        admission = await admit(request, scope=SCOPE_SUBSCRIBE)
        header = admission.header
        note_message(request, header)
        message = decode_action(header, admission.message, "unsubscribe")
        count = len(message.subscription_codes) if isinstance(message, UnSubscribeRequest) else 0
        check_header(header, action="unsubscribe", items=count, settings=state.settings)
        assert isinstance(message, UnSubscribeRequest)
        service = _service(state)
        target: CallbackTarget | None = None
        try:
            target = await _target(state, header)
        except SenderUriError:
            if header.sender_uri:
                raise  # a callback URL that is refused; without one we answer at once
        correlation_id, queued = await _run(
            functools.partial(
                service.handle_unsubscribe,
                header,
                message,
                sender_id=header.sender_id,
                callback_url=target.url if target else None,
                scheme=target.scheme if target else None,
            )
        )
        _kick(state)
        return _ack(correlation_id, AckStatus.ACK if queued else AckStatus.NACK)


async def _run(call: functools.partial[Any]) -> Any:
    return await anyio.to_thread.run_sync(call)
