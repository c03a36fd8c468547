"""Store fixtures: a migrated, empty embedded store on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dci_bridge.db.engine import migrate
from dci_bridge.records.store import EmbeddedFhirStore


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EmbeddedFhirStore]:
    migrate(database_url)
    opened = await EmbeddedFhirStore.open(database_url)
    try:
        yield opened
    finally:
        await opened.aclose()
