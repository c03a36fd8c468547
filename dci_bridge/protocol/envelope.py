"""Envelopes: `{signature, header, message}` around every request, callback and sync answer.

Inbound bodies are decoded in two stages. `RequestEnvelope` / `CallbackEnvelope` read the
header and keep `message` as raw JSON; the message is then decoded by action
(`codec.decode_message`) or, when `header.is_msg_encrypted`, decrypted first. `RawEnvelope`
keeps both parts raw, as signature verification needs them exactly as sent.

Outbound, `Envelope[H, M]` types the three parts for encoding, e.g.
`Envelope[MsgCallbackHeader, SearchResponse](header=..., message=...)`; `M` may be
`EncryptedMessage` or `msgspec.Raw` (an already encoded message).
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.protocol.primitives import Signature

H = TypeVar("H")
M = TypeVar("M")


class RequestEnvelope(msgspec.Struct, kw_only=True, frozen=True):
    """Any inbound request (MsgHeader): `message` is required and decoded later."""

    signature: Signature | None = None
    header: MsgHeader
    message: msgspec.Raw


class CallbackEnvelope(msgspec.Struct, kw_only=True, frozen=True):
    """Any inbound callback or sync answer (MsgCallbackHeader): `message` may be absent."""

    signature: Signature | None = None
    header: MsgCallbackHeader
    message: msgspec.Raw | UnsetType = UNSET


class RawEnvelope(msgspec.Struct, kw_only=True, frozen=True):
    """An envelope with header and message exactly as received, for signature checks."""

    signature: Signature | None = None
    header: msgspec.Raw
    message: msgspec.Raw | UnsetType = UNSET


class Envelope(msgspec.Struct, Generic[H, M], kw_only=True, frozen=True, omit_defaults=True):
    """An outbound envelope; `signature` and `message` are left out when not given."""

    signature: Signature | None = None
    header: H
    message: M | UnsetType = UNSET
