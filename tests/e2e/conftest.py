"""A seeded bridge served over real HTTP on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.db.engine import migrate
from dci_bridge.records.seed import KnownPersons, known_persons, seed_store
from dci_bridge.settings import Settings
from tests.conftest import PG_ADMIN_URL
from tests.security_support import DciTestClient, now_ts
from tests.servers import serve_asgi

SEED = 20261123
PERSONS = 1500


@pytest.fixture(scope="session")
def known() -> KnownPersons:
    return known_persons(SEED)


@pytest.fixture(scope="session")
def seeded_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("store") / "seeded.sqlite3"
    url = f"sqlite:///{path}"
    asyncio.run(seed_store(url, persons=PERSONS, seed=SEED))
    return url


@pytest.fixture(scope="session")
def seeded_pg_url(pg_server: str) -> Iterator[str]:
    import psycopg

    name = f"dci_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    try:
        asyncio.run(seed_store(url, persons=PERSONS, seed=SEED))
        yield url
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_SENDERS: dict[str, DciTestClient] = {}


def sender_for(database_url: str) -> DciTestClient:
    """The test client `spp.example.org`, registered once per seeded database."""
    if database_url not in _SENDERS:
        migrate(database_url)
        _SENDERS[database_url] = DciTestClient.register(database_url, encryption=True)
    return _SENDERS[database_url]


@dataclass(frozen=True)
class Bridge:
    url: str
    database_url: str
    sender: DciTestClient
    data_dir: Path


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def bridge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bridge]:
    """A bridge over a seeded store (once per database kind) with one registered client."""
    url = request.getfixturevalue(
        "seeded_sqlite_url" if request.param == "sqlite" else "seeded_pg_url"
    )
    sender = sender_for(url)
    data_dir = tmp_path_factory.mktemp("bridge-data")
    settings = Settings.from_env(
        {"DCI_BRIDGE_DATABASE__URL": url, "DCI_BRIDGE_DATA_DIR": str(data_dir)}
    )
    with serve_asgi(create_app(settings)) as base:
        yield Bridge(base, url, sender, data_dir)


@pytest.fixture(scope="session")
def bridge_url(bridge: Bridge) -> str:
    return bridge.url


@pytest.fixture
def client(bridge: Bridge) -> Iterator[httpx.Client]:
    """An HTTP client that authenticates and signs like a registered DCI client."""
    with bridge.sender.authenticated(bridge.url, timeout=10) as http:
        yield http


@pytest.fixture
def raw_client(bridge_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client: no token, no signature."""
    with httpx.Client(base_url=bridge_url, timeout=10) as http:
        yield http


def envelope(*items: dict[str, Any], **header: Any) -> dict[str, Any]:
    """A search envelope around search_request items (header fields may be overridden)."""
    head = {
        "version": "1.0.0",
        "message_id": str(uuid.uuid4()),
        "message_ts": now_ts(),
        "action": "search",
        "sender_id": "spp.example.org",
        "total_count": len(items),
    }
    head.update(header)
    return {"header": head, "message": {"transaction_id": "txn-1", "search_request": list(items)}}


def item(
    query_type: str, query: Any, reference_id: str = "ref-1", **criteria: Any
) -> dict[str, Any]:
    return {
        "reference_id": reference_id,
        "timestamp": "2026-11-23T10:00:00Z",
        "search_criteria": {"query_type": query_type, "query": query, **criteria},
    }
