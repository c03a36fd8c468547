"""Callbacks the registry sends (notify, on-subscribe, on-unsubscribe) and where they go.

A use case builds `NotifyJob`s and hands them to a `NotifySink` inside its own write
transaction; the production sink is the delivery outbox (signing, encryption, retries), so a
callback is queued exactly when the state change that caused it commits. A job with
`encrypt` is stored with `is_msg_encrypted: true` in its header: the worker then encrypts the
message to the receiver's registered key (`RecipientKeys`) at every attempt, or fails it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa

from dci_bridge.crypto.jwk import PublicKey
from dci_bridge.delivery import outbox
from dci_bridge.delivery.outbox import NewJob
from dci_bridge.protocol.codec import encode
from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.registry.security import SecurityService

__all__ = ["NotifyJob", "NotifySink", "OutboxSink", "RecipientKeys", "RecordingSink"]


@dataclass(frozen=True, slots=True)
class NotifyJob:
    """One callback (notify, on-subscribe, on-unsubscribe) for one DCI sender, for the outbox.

    `header` and `message` are the envelope's parts (unsigned, unencrypted); the outbox
    signs the envelope, encrypts `message` when `encrypt` is set, and POSTs it to `url`.
    """

    kind: str
    receiver_id: str
    url: str
    encrypt: bool
    header: MsgCallbackHeader | MsgHeader
    message: Any
    correlation_id: str | None = None
    scheme: str | None = None
    """Signature scheme the receiver wants (None: the signer's default)."""


class NotifySink(Protocol):
    def enqueue_notify(
        self, conn: sa.Connection, jobs: Sequence[NotifyJob], now: dt.datetime
    ) -> None:
        """Queue the jobs for delivery inside the caller's transaction (commit = queued)."""
        ...


class RecordingSink:
    """A sink that keeps jobs in a list (tests, and a bridge without a delivery outbox)."""

    def __init__(self) -> None:
        self.jobs: list[NotifyJob] = []

    def enqueue_notify(
        self, conn: sa.Connection, jobs: Sequence[NotifyJob], now: dt.datetime
    ) -> None:
        self.jobs.extend(jobs)


class OutboxSink:
    """The production sink: each job becomes an HTTP delivery job on the delivery outbox
    (signed at every attempt, retried on the outbox's schedule, dead after the last try)."""

    def enqueue_notify(
        self, conn: sa.Connection, jobs: Sequence[NotifyJob], now: dt.datetime
    ) -> None:
        outbox.enqueue(
            conn,
            [
                NewJob(
                    kind=job.kind,
                    header=encode(
                        msgspec.structs.replace(job.header, is_msg_encrypted=True)
                        if job.encrypt
                        else job.header
                    ),
                    message=encode(job.message),
                    target_url=job.url,
                    sender_id=job.receiver_id,
                    message_id=job.header.message_id,
                    correlation_id=job.correlation_id,
                    scheme=job.scheme,
                )
                for job in jobs
            ],
            now=now,
        )


class RecipientKeys:
    """The worker's source of receivers' encryption keys: the sender registry and the
    senders' JWKS (inline or fetched, cached like the keys that verify their requests)."""

    def __init__(self, security: SecurityService) -> None:
        self.security = security

    async def __call__(self, receiver_id: str) -> PublicKey | None:
        sender = await self.security.senders.lookup(receiver_id)
        if sender is None:
            return None
        keys = await self.security.sender_keys(sender)
        return keys.encryption_key()
