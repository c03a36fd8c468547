"""Async search (`POST /registry/search`) and transaction status (`/registry/txn/status`,
`/registry/sync/txn/status`): decode, check, hand to `registry.async_ops`."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post

from dci_bridge.api.controllers.search import JSON, require_json
from dci_bridge.api.errors import schema_error
from dci_bridge.api.observe import note_message
from dci_bridge.api.security import SCOPE_SEARCH, SCOPE_TXN_STATUS, admit, sealed_response
from dci_bridge.api.state import BridgeState
from dci_bridge.errors import SchemaError
from dci_bridge.protocol.codec import decode_message, encode
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.protocol.search import SearchRequest
from dci_bridge.protocol.txn import TxnStatusRequest
from dci_bridge.registry.async_ops import AsyncOperations, CallbackTarget, callback_target
from dci_bridge.registry.search import check_header


def decode_action(header: MsgHeader, raw_message: bytes, action: str) -> Any:
    """The admitted message decoded for `action` (None when the header names another)."""
    if header.action != action:
        return None
    try:
        return decode_message(action, raw_message)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise schema_error(exc) from None
    except UnicodeDecodeError:
        raise SchemaError("body is not valid UTF-8 JSON") from None


def _operations(state: BridgeState) -> AsyncOperations:
    operations = state.async_ops
    assert operations is not None, "async operations are set up in the lifespan"
    return operations


async def _target(state: BridgeState, header: MsgHeader) -> CallbackTarget:
    prefixes: tuple[str, ...] = ()
    scheme: str | None = None
    if state.senders is not None:
        sender = await state.senders.lookup(header.sender_id)
        if sender is not None and sender.enabled:
            prefixes, scheme = sender.callback_prefixes, sender.signature_scheme
    return callback_target(state.settings, header, prefixes=prefixes, scheme=scheme)


def _kick(state: BridgeState) -> None:
    if state.delivery is not None:
        state.delivery.kick()


class AsyncController(Controller):
    path = "/registry"
    tags = ["Async"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @post(
        "/search",
        operation_id="async_search",
        summary="Search the civil registry; the answer comes as on-search callbacks",
        status_code=200,
        opt={"dci_style": "async", "dci_schemas": ("search.request", "ack")},
    )
    async def search(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        require_json(request)
        state: BridgeState = request.app.state.bridge
        admission = await admit(request, scope=SCOPE_SEARCH)  # encrypted: answers are too
        header = admission.header
        note_message(request, header)
        message = decode_action(header, admission.message, "search")
        count = len(message.search_request) if isinstance(message, SearchRequest) else 0
        check_header(header, action="search", items=count, settings=state.settings)
        assert isinstance(message, SearchRequest)
        target = await _target(state, header)
        ack = await _operations(state).accept_search(header, message, admission.message, target)
        _kick(state)
        return Response(encode(ack), media_type=JSON)

    @post(
        "/txn/status",
        operation_id="txn_status",
        summary="Ask for a transaction's status; the answer comes as a txn-on-status callback",
        status_code=200,
        opt={"dci_style": "async", "dci_schemas": ("txn-status.request", "ack")},
    )
    async def txn_status(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        require_json(request)
        state: BridgeState = request.app.state.bridge
        admission = await admit(request, scope=SCOPE_TXN_STATUS)  # encrypted: the answer too
        header = admission.header
        note_message(request, header)
        message = decode_action(header, admission.message, "txn-status")
        check_header(header, action="txn-status", items=1, settings=state.settings)
        assert isinstance(message, TxnStatusRequest)
        target = await _target(state, header)
        ack = await _operations(state).accept_txn_status(header, message, target)
        _kick(state)
        return Response(encode(ack), media_type=JSON)

    @post(
        "/sync/txn/status",
        operation_id="sync_txn_status",
        summary="A transaction's status, answered in the same HTTP exchange",
        status_code=200,
        tags=["Sync"],
        opt={
            "dci_style": "sync",
            "dci_action": "txn-on-status",
            "dci_schemas": ("txn-status.request", "txn-status.sync_response"),
        },
    )
    async def sync_txn_status(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        require_json(request)
        state: BridgeState = request.app.state.bridge
        admission = await admit(request, scope=SCOPE_TXN_STATUS)
        note_message(request, admission.header)
        message = decode_action(admission.header, admission.message, "txn-status")
        check_header(admission.header, action="txn-status", items=1, settings=state.settings)
        assert isinstance(message, TxnStatusRequest)
        header, response = await _operations(state).txn_status(admission.header, message)
        if admission.encrypted:
            header = msgspec.structs.replace(header, is_msg_encrypted=True)
        return sealed_response(request, admission, header, response)
