"""Encrypted callbacks: the worker encrypts to the receiver's key, then signs; without a
usable key the attempt fails with the reason recorded and nothing is sent."""

from __future__ import annotations

import json

import pytest

from dci_bridge.clock import SystemClock
from dci_bridge.crypto import decrypt_message, verify_envelope
from dci_bridge.crypto.jwk import PublicKey, generate_decryption_key
from dci_bridge.db.engine import begin_write
from dci_bridge.delivery import outbox
from dci_bridge.delivery.worker import Worker, asks_encryption
from dci_bridge.protocol.codec import decode_raw_envelope
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.registry.callbacks import NotifyJob, OutboxSink
from dci_bridge.settings import DeliverySettings

pytestmark = pytest.mark.anyio

LOOPBACK = DeliverySettings(allow_private_addresses=True, timeout_s=3.0, lease_s=30.0)
RECEIVER_ID = "spp.example.org"
SECRET_NAME = "Amani Wanjiru"  # must never appear on the wire in clear


def notify_job(url: str, *, encrypt: bool) -> NotifyJob:
    header = MsgHeader(
        message_id="notify-1",
        message_ts="2026-11-23T10:00:00.000Z",
        action="notify",
        sender_id="crvs.dci-bridge.local",
        receiver_id=RECEIVER_ID,
        total_count=1,
    )
    message = {
        "transaction_id": "t-1",
        "notify_event": [{"data": {"reg_records": [{"name": {"given_name": SECRET_NAME}}]}}],
    }
    return NotifyJob("notify", RECEIVER_ID, url, encrypt, header, message)


def enqueue(engine, clock, job: NotifyJob) -> str:
    with begin_write(engine) as conn:
        OutboxSink().enqueue_notify(conn, [job], clock.now())
        [stored] = outbox.list_jobs(conn, kind="notify", limit=1)
    return stored.job_id


def keys_of(mapping: dict[str, PublicKey | None]):
    async def lookup(receiver_id: str) -> PublicKey | None:
        return mapping.get(receiver_id)

    return lookup


async def run(engine, clock, signer, **kw) -> None:
    worker = Worker(engine, LOOPBACK, clock=clock, signer=signer, **kw)
    try:
        await worker.run_until_idle()
    finally:
        await worker.aclose()


async def test_encrypted_notify_is_encrypted_to_the_receiver_then_signed(
    engine, clock, signer, keys, receiver
):
    app, base = receiver
    recipient = generate_decryption_key("RSA-OAEP-256", clock=SystemClock())
    enqueue(engine, clock, notify_job(f"{base}/notify", encrypt=True))

    await run(engine, clock, signer, encryption_keys=keys_of({RECEIVER_ID: recipient.public}))

    [got] = app.received
    assert SECRET_NAME.encode() not in got.body
    body = json.loads(got.body)
    assert body["header"]["is_msg_encrypted"] is True
    assert body["header"]["message_id"] == "notify-1"
    assert set(body["message"]) == {"header", "encrypted_key", "iv", "ciphertext", "tag"}
    assert body["message"]["header"]["kid"] == recipient.kid
    raw = decode_raw_envelope(got.body)  # the signature covers the encrypted message as sent
    verify_envelope(raw.signature, raw.header, raw.message, keys.verification_keys(), clock=clock)
    plain = json.loads(decrypt_message(body["message"], {recipient.kid: recipient}))
    assert plain["notify_event"][0]["data"]["reg_records"][0]["name"]["given_name"] == SECRET_NAME


@pytest.mark.parametrize("source", ["no key registered", "no key source", "keys unavailable"])
async def test_without_a_usable_key_nothing_is_sent_and_the_reason_is_recorded(
    engine, clock, signer, receiver, source
):
    app, base = receiver
    job_id = enqueue(engine, clock, notify_job(f"{base}/notify", encrypt=True))
    sign_only = generate_decryption_key("RSA-OAEP-256", clock=SystemClock())

    async def failing(receiver_id: str) -> PublicKey | None:
        raise OSError("JWKS URL did not answer")

    kw = {
        "no key registered": {"encryption_keys": keys_of({RECEIVER_ID: None, "x": sign_only})},
        "no key source": {},
        "keys unavailable": {"encryption_keys": failing},
    }[source]
    await run(engine, clock, signer, **kw)

    assert app.received == []  # never a plaintext send
    with engine.connect() as conn:
        found = outbox.get_job(conn, job_id)
    assert found is not None
    assert found.job.state == "pending"  # retried on the schedule (a key may be registered)
    [attempt] = found.attempts
    assert attempt.outcome == "retry"
    assert attempt.http_status is None
    assert attempt.error is not None
    assert "encrypt" in attempt.error
    assert found.job.last_error == attempt.error


async def test_a_plain_notify_stays_plain(engine, clock, signer, receiver):
    app, base = receiver
    enqueue(engine, clock, notify_job(f"{base}/notify", encrypt=False))
    await run(engine, clock, signer)  # no key source needed
    [got] = app.received
    body = json.loads(got.body)
    assert body["header"]["is_msg_encrypted"] is False
    assert SECRET_NAME in json.dumps(body["message"])


@pytest.mark.parametrize(
    ("header", "asks"),
    [
        (b'{"action":"notify"}', False),
        (b'{"is_msg_encrypted":false}', False),
        (b'{"is_msg_encrypted": true}', True),
        (b'{"is_msg_encrypted":"yes"}', True),  # unreadable: fail closed
        (b'{"is_msg_encrypted":tru', True),
    ],
)
async def test_the_header_flag_decides_and_fails_closed(header: bytes, asks: bool):
    assert asks_encryption(header) is asks
