"""Batched subscriptions (a `frequency`) on several replicas: every replica's ingest loop
flushes due batches, so two may flush the same subscription at the same moment. Each batch
must still be sent once: a replica skips a subscription another one is flushing.

Deterministic: replica A flushes and holds its transaction open; replica B flushes
meanwhile; then A commits and B finishes. Exactly one notify job must exist."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import msgspec
import pytest
import sqlalchemy as sa

from dci_bridge.clock import SystemClock
from dci_bridge.db.engine import begin_write, create_sync_engine, migrate
from dci_bridge.delivery.outbox import jobs_table
from dci_bridge.protocol.subscribe import SubscribeRequest
from dci_bridge.records.mapped import RecordEvent
from dci_bridge.registry.callbacks import OutboxSink
from dci_bridge.registry.ids import UuidSource
from dci_bridge.registry.ingest import IngestService
from dci_bridge.registry.notify import Fanout, pending_table
from dci_bridge.registry.subscriptions import SubscriptionService, SubscriptionStore
from dci_bridge.settings import Settings
from tests.subscriptions_support import bundles_of, subscribe_envelope, webhook_body

pytestmark = pytest.mark.postgres
SENDER = "sp.example.org"


def _replica(engine: sa.Engine, settings: Settings) -> Fanout:
    """What one replica's app wires: its own store (and rule cache) over the shared database."""
    return Fanout(SubscriptionStore(), OutboxSink(), settings, SystemClock(), UuidSource())


def test_two_replicas_flushing_one_due_batch_send_it_once(pg_database: str) -> None:
    migrate(pg_database)
    settings = Settings.from_env({"DCI_BRIDGE_DATABASE__URL": pg_database})
    engine = create_sync_engine(pg_database, pool_size=4)
    clock, ids = SystemClock(), UuidSource()
    try:
        now = clock.now()
        envelope = subscribe_envelope(
            sender_id=SENDER,
            sender_uri="http://127.0.0.1:9/registry/notify",
            frequency={
                "start_time": (now - dt.timedelta(hours=1)).isoformat(),
                "end_time": (now + dt.timedelta(days=1)).isoformat(),
                "frequency": "0 * * * *",
            },
        )
        request = msgspec.convert(envelope["message"], SubscribeRequest)
        service = SubscriptionService(
            engine, SubscriptionStore(), settings, clock, ids, OutboxSink()
        )
        with begin_write(engine) as conn:
            answer = service.subscribe(
                conn,
                sender_id=SENDER,
                notify_url="http://127.0.0.1:9/registry/notify",
                encrypt=False,
                request=request,
                correlation_id=str(uuid.uuid4()),
            )
        assert answer.subscribe_response[0].status.value == "succ", answer

        # two registrations arrive and are collected for the batch
        ingest = IngestService(engine, settings, clock, ids, _replica(engine, settings))
        for bundle, _ in bundles_of(RecordEvent.BIRTH)[:2]:
            ingest.receive_v1(webhook_body(bundle))
        assert ingest.process_pending() == 2
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(pending_table)).scalar() == 2
            conn.execute(sa.text("UPDATE subscription SET next_batch_at = :t"), {"t": now})
            conn.commit()

        a, b = _replica(engine, settings), _replica(engine, settings)
        a_flushed, a_commit = threading.Event(), threading.Event()
        sent: dict[str, int] = {}

        def replica_a() -> None:
            with begin_write(engine) as conn:
                sent["a"] = a.flush_batches(conn, clock.now())
                a_flushed.set()
                a_commit.wait(30)

        def replica_b() -> None:
            with begin_write(engine) as conn:
                sent["b"] = b.flush_batches(conn, clock.now())

        first = threading.Thread(target=replica_a)
        first.start()
        assert a_flushed.wait(30)
        second = threading.Thread(target=replica_b)
        second.start()
        second.join(1.0)  # B either skips at once or waits for A's locks
        a_commit.set()
        first.join(30)
        second.join(30)
        assert not first.is_alive()
        assert not second.is_alive()

        with engine.connect() as conn:
            jobs = conn.execute(
                sa.select(jobs_table.c.message_json).where(jobs_table.c.kind == "notify")
            ).all()
            left = conn.execute(sa.select(sa.func.count()).select_from(pending_table)).scalar()
        assert sent == {"a": 1, "b": 0}, sent
        assert len(jobs) == 1, f"{len(jobs)} notify jobs for one due batch"
        events = msgspec.json.decode(jobs[0].message_json)["notify_event"]
        assert len(events) == 2
        assert left == 0
    finally:
        engine.dispose()
