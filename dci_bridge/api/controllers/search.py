"""`POST /registry/sync/search`: decode, check, search, encode. The hot path of the bridge.

`answer_sync_search` makes the answer; it is served as a fast route (`api/fastpath.py`) and,
with `server.fast_routes` off, by the Litestar handler below (which also documents it)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post

from dci_bridge.api.errors import schema_error
from dci_bridge.api.fastpath import Incoming, check_json
from dci_bridge.api.observe import count_search_results, remember_message
from dci_bridge.api.security import SCOPE_SEARCH
from dci_bridge.api.state import BridgeState
from dci_bridge.errors import SchemaError
from dci_bridge.protocol.codec import decode_message
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.protocol.search import SearchRequest
from dci_bridge.registry.search import check_header

JSON = "application/json"


def require_json(request: Request[Any, Any, Any]) -> None:
    """DCI bodies are JSON: anything else is refused with 415 before the body is read."""
    check_json(request.headers.get("content-type"))


def decode_search(header: MsgHeader, raw_message: bytes) -> SearchRequest | None:
    """The admitted message as a search request (None if the action is not `search`)."""
    if header.action != "search":
        return None
    try:
        message = decode_message("search", raw_message)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise schema_error(exc) from None
    except UnicodeDecodeError:  # msgspec raises it for invalid UTF-8 inside a JSON string
        raise SchemaError("body is not valid UTF-8 JSON") from None
    assert isinstance(message, SearchRequest)
    return message


class SearchController(Controller):
    path = "/registry"
    tags = ["Sync"]  # noqa: RUF012  (Litestar declares it as an instance attribute)

    @post(
        "/sync/search",
        operation_id="sync_search",
        summary="Search the civil registry and answer in the same HTTP exchange",
        status_code=200,
        opt={"dci_style": "sync", "dci_schemas": ("search.request", "search.sync_response")},
    )
    async def sync_search(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        require_json(request)
        incoming = Incoming(
            request.headers.get("authorization"), await request.body(), request.scope["state"]
        )
        body = await answer_sync_search(request.app.state.bridge, incoming)
        return Response(body, status_code=200, media_type=JSON)


async def answer_sync_search(state: BridgeState, incoming: Incoming) -> bytes:
    """The signed (and, if asked, encrypted) answer to a sync search; raises `DciError`."""
    admission = await state.security.admit(
        incoming.authorization, incoming.body, scope=SCOPE_SEARCH
    )
    header = admission.header
    remember_message(incoming.notes, header)
    message = decode_search(header, admission.message)
    count = len(message.search_request) if message is not None else 0
    check_header(header, action="search", items=count, settings=state.settings)
    assert message is not None
    sender_id = admission.sender.sender_id if admission.sender is not None else None
    outcome = await state.search.search(header, message, sender_id=sender_id)
    count_search_results(outcome.response.search_response)
    if state.audit is not None:
        state.audit.record_search(
            header,
            message,
            outcome.response,
            disclosures=outcome.disclosures,
            policy_revision=outcome.policy_revision,
        )
    answer = outcome.header
    if admission.encrypted:
        answer = msgspec.structs.replace(answer, is_msg_encrypted=True)
    return state.security.seal(admission, answer, outcome.response)
