"""Batched notify over real HTTP with an injected clock (no sleeping until the cron fires): a
subscription with a `frequency` collects matching registrations and sends them in one signed
notify when its schedule comes due, then starts collecting again."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dci_bridge.api.app import create_app
from dci_bridge.clock import FixedClock, isoformat_z
from dci_bridge.crypto import KeyStore
from dci_bridge.db.engine import create_sync_engine, migrate
from dci_bridge.records.mapped import RecordEvent
from dci_bridge.registry.ingest import inbox_table
from tests.delivery_receivers import RecordingReceiver
from tests.security_support import DciTestClient
from tests.servers import serve_asgi
from tests.subscriptions_support import (
    bundles_of,
    notify_settings,
    post_webhook,
    subscribe_envelope,
    verified_notifies,
    wait_for,
    webhook_body,
)

SENDER = "batch.example.org"
HOURLY = "0 0 * * * ? *"
"""Quartz cron (seconds first): at the top of every hour."""


@dataclass
class Batching:
    base: str
    clock: FixedClock
    receiver: RecordingReceiver
    keys: KeyStore
    database_url: str
    http: httpx.Client

    def notifies(self) -> list[dict[str, Any]]:
        return verified_notifies(self.receiver.bodies(), self.keys.verification_keys(), self.clock)

    def processed(self) -> int:
        engine = create_sync_engine(self.database_url, pool_size=1)
        try:
            with engine.connect() as conn:
                query = (
                    sa.select(sa.func.count())
                    .select_from(inbox_table)
                    .where(inbox_table.c.status == "done")
                )
                return int(conn.execute(query).scalar_one())
        finally:
            engine.dispose()

    def register(self, bundle: dict[str, Any]) -> None:
        answer = post_webhook(self.http, self.base, webhook_body(bundle))
        assert answer.status_code == 202, answer.text


@pytest.fixture
def batching(database_url: str, tmp_path: Path) -> Iterator[Batching]:
    # starts at the real time: the signed subscribe request must be fresh
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clock = FixedClock(now)
    receiver = RecordingReceiver()
    with serve_asgi(receiver) as receiver_base:
        settings = notify_settings(database_url, tmp_path, receiver_base)
        migrate(database_url)
        sender = DciTestClient.register(database_url, SENDER)
        with (
            serve_asgi(create_app(settings, clock=clock)) as base,
            sender.authenticated(base, timeout=30) as client,
            httpx.Client(timeout=30) as http,
        ):
            envelope = subscribe_envelope(
                sender_id=SENDER,
                sender_uri=f"{receiver_base}/registry/notify",
                frequency={
                    "start_time": isoformat_z(now - dt.timedelta(minutes=1)),
                    "end_time": isoformat_z(now + dt.timedelta(days=1)),
                    "frequency": HOURLY,
                },
            )
            answer = client.post(f"{base}/registry/subscribe", json=envelope)
            assert answer.status_code == 200, answer.text
            batching = Batching(
                base, clock, receiver, KeyStore(tmp_path / "keys"), database_url, http
            )
            wait_for(
                lambda: any(b'"on-subscribe"' in b for b in receiver.bodies()),
                timeout_s=30,
                what="on-subscribe",
            )
            yield batching


def _top_of_next_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0) + dt.timedelta(hours=1)


def test_events_wait_for_the_schedule_then_arrive_in_one_notify(batching: Batching) -> None:
    births = [b for b, r in bundles_of(RecordEvent.BIRTH) if r.registration_number]
    numbers = [
        r.registration_number for _, r in bundles_of(RecordEvent.BIRTH) if r.registration_number
    ]
    for bundle in births[:3]:
        batching.register(bundle)
    wait_for(lambda: batching.processed() == 3, timeout_s=30, what="the three registrations")
    time.sleep(1.5)  # several ingest passes ran: the schedule is not due, nothing is sent
    assert batching.notifies() == []

    due = _top_of_next_hour(batching.clock.now())
    batching.clock.advance((due - batching.clock.now()).total_seconds() + 1)
    first = wait_for(batching.notifies, timeout_s=30, what="the batch")
    assert len(first) == 1
    items = first[0]["message"]["notify_event"]
    assert first[0]["header"]["total_count"] == len(items) == 3
    carried = {
        i["identifier_value"]
        for item in items
        for record in item["data"]["reg_records"]
        for i in record["identifier"]
        if i["identifier_type"] == "BRN"
    }
    assert carried == set(numbers[:3])

    # the next batch collects what comes after, and waits for the next hour
    for bundle in births[3:5]:
        batching.register(bundle)
    wait_for(lambda: batching.processed() == 5, timeout_s=30, what="two more registrations")
    time.sleep(1.5)
    assert len(batching.notifies()) == 1
    batching.clock.advance(3600)
    second = wait_for(lambda: batching.notifies()[1:], timeout_s=30, what="the second batch")
    assert len(second[0]["message"]["notify_event"]) == 2
