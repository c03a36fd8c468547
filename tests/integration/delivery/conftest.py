"""Delivery fixtures: a migrated database, the bridge's keys, a recording receiver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dci_bridge.clock import UTC, FixedClock
from dci_bridge.crypto import EnvelopeSigner, KeyStore
from dci_bridge.db.engine import create_sync_engine, migrate
from tests.delivery_receivers import RecordingReceiver
from tests.servers import serve_asgi

START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    migrate(database_url)
    created = create_sync_engine(database_url)
    try:
        yield created
    finally:
        created.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    path: Path = tmp_path_factory.mktemp("keys")
    return KeyStore(path)


@pytest.fixture
def signer(keys: KeyStore, clock: FixedClock) -> EnvelopeSigner:
    return EnvelopeSigner(keys, sender_id="crvs.dci-bridge.local", clock=clock)


@pytest.fixture
def receiver() -> Iterator[tuple[RecordingReceiver, str]]:
    app = RecordingReceiver()
    with serve_asgi(app) as base:
        yield app, base
