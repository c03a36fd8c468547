"""A seeded bridge served over real HTTP on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dci_bridge.api.app import create_app
from dci_bridge.records.seed import KnownPersons, known_persons, seed_store
from dci_bridge.settings import Settings
from tests.conftest import PG_ADMIN_URL
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


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def bridge_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of a bridge over a seeded store (once per database kind)."""
    url = request.getfixturevalue(
        "seeded_sqlite_url" if request.param == "sqlite" else "seeded_pg_url"
    )
    settings = Settings.from_env({"DCI_BRIDGE_DATABASE__URL": url})
    with serve_asgi(create_app(settings)) as base:
        yield base


@pytest.fixture
def client(bridge_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bridge_url, timeout=10) as http:
        yield http


def envelope(*items: dict[str, Any], **header: Any) -> dict[str, Any]:
    """A search envelope around search_request items (header fields may be overridden)."""
    head = {
        "version": "1.0.0",
        "message_id": str(uuid.uuid4()),
        "message_ts": "2026-11-23T10:00:00Z",
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
