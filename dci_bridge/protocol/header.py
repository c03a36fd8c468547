"""Message headers: `MsgHeader` on requests, `MsgCallbackHeader` on callbacks and sync answers.

`action` is a plain string: an unknown action is the use case's `rjct.action.invalid`, not a
schema error. `version` and `is_msg_encrypted` are always written out, although the standard
lets them default, so a receiver never has to guess (a `default_factory` is what keeps
msgspec's `omit_defaults` from dropping them).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from dci_bridge.protocol.codes import VERSION, HeaderStatusReasonCode, RequestStatus
from dci_bridge.protocol.primitives import (
    DateTime,
    MessageId,
    SenderId,
    StatusReasonMessage,
    Uri,
)

Version = Annotated[str, Meta(extra_json_schema={"default": VERSION})]
Encrypted = Annotated[bool, Meta(extra_json_schema={"default": False})]
HeaderMeta = Annotated[
    dict[str, Any],
    Meta(description="Free-form, unencrypted information for intermediaries (Meta)"),
]


def version_default() -> str:
    """The wire protocol version, as a factory so it is always encoded."""
    return VERSION


def _not_encrypted() -> bool:
    return False


class MsgHeader(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Header of a request message (MsgHeader_V1.0.0); also used by on-subscribe/on-unsubscribe."""

    version: Version = msgspec.field(default_factory=version_default)
    message_id: MessageId
    message_ts: DateTime
    action: str
    sender_id: SenderId
    sender_uri: Uri | None = None
    receiver_id: str | None = None
    total_count: int
    is_msg_encrypted: Encrypted = msgspec.field(default_factory=_not_encrypted)
    meta: HeaderMeta | None = None


class MsgCallbackHeader(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Header of a callback or sync answer (MsgCallbackHeader_V1.0.0): carries `status`."""

    version: Version = msgspec.field(default_factory=version_default)
    message_id: MessageId
    message_ts: DateTime
    action: str
    status: RequestStatus
    status_reason_code: HeaderStatusReasonCode | None = None
    status_reason_message: StatusReasonMessage | None = None
    total_count: int | None = None
    completed_count: int | None = None
    sender_id: str | None = None
    receiver_id: str | None = None
    is_msg_encrypted: Encrypted = msgspec.field(default_factory=_not_encrypted)
    meta: HeaderMeta | None = None
