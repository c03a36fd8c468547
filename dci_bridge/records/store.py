"""The embedded FHIR record store: OpenCRVS records in SQLite or PostgreSQL, searched as persons.

Hot path: a search that is one identifier look-up (the common DCI `idtype-value` search)
reads `person_identifier` joined to `person` with one cached SQL string and returns the
stored `dci_json` bytes as `msgspec.Raw`, with no ORM and no mapping per request
(`readers.py`: on the event loop for SQLite, a psycopg async pool for PostgreSQL). Every
other query is compiled by `sql_query` and runs on a SQLAlchemy engine in a worker thread,
as do writes (`indexer.index_bundle` in one write transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread
import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock, SystemClock
from dci_bridge.db.engine import (
    begin_write,
    create_sync_engine,
    current_revision,
    head_revision,
    libpq_conninfo,
    sqlite_path,
)
from dci_bridge.protocol.codes import IdentifierType
from dci_bridge.records.indexer import UpsertResult, index_bundle, person_table
from dci_bridge.records.query import IdentifierLookup, Page, RecordQuery
from dci_bridge.records.readers import PostgresReader, SqliteReader
from dci_bridge.records.source import RecordPage
from dci_bridge.records.sql_query import (
    EVENT_COLUMNS,
    clean_text,
    count_statement,
    lookup_types,
    page_statement,
)

__all__ = ["EmbeddedFhirStore", "StoreNotReadyError", "UpsertResult"]

FAST_PATH_MAX_VALUES = 100
"""Identifier look-ups with at most this many values take the direct SQL path."""


class StoreNotReadyError(RuntimeError):
    """The database is missing or not migrated to this code's schema."""


def _fast_plan(query: RecordQuery) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
    """(stored id type, values, event flag columns) when `query` is a plain look-up."""
    where = query.where
    if not isinstance(where, IdentifierLookup) or query.sort:
        return None
    if not 0 < len(where.values) <= FAST_PATH_MAX_VALUES:
        return None
    flags = tuple(sorted({EVENT_COLUMNS[e].name for e in query.event_types if e in EVENT_COLUMNS}))
    values = tuple(clean_text(v, "identifier") for v in where.values)
    return lookup_types(where.id_type), values, flags


def _page(rows: Sequence[tuple[str, bytes]], page: Page) -> RecordPage:
    unique = dict(sorted(rows))  # one row per person, ordered by person key
    chosen = list(unique.values())[page.offset : page.offset + page.size]
    return RecordPage([msgspec.Raw(data) for data in chosen], len(unique))


class EmbeddedFhirStore:
    """OpenCRVS records stored and indexed locally; implements `RecordSource`."""

    def __init__(
        self,
        url: str,
        engine: sa.Engine,
        reader: SqliteReader | PostgresReader,
        clock: Clock,
    ) -> None:
        self.url = url
        self.engine = engine
        """The SQLAlchemy engine, for callers that index records in their own transaction."""
        self._reader = reader
        self._clock = clock

    @classmethod
    async def open(
        cls, url: str, *, clock: Clock | None = None, pool_size: int = 5
    ) -> EmbeddedFhirStore:
        """Open a migrated store; raises `StoreNotReadyError` when it is not migrated."""
        path = sqlite_path(url)
        if path is not None and not path.exists():
            raise StoreNotReadyError("the SQLite store does not exist yet: run the migrations")
        found = await anyio.to_thread.run_sync(current_revision, url)
        expected = head_revision()
        if found != expected:
            raise StoreNotReadyError(
                f"the store's schema is at revision {found or 'none'}, this code needs "
                f"{expected}: run the migrations (`dci_bridge.db.engine.migrate`)"
            )
        engine = create_sync_engine(url, pool_size=pool_size)
        reader: SqliteReader | PostgresReader
        if path is not None:
            reader = SqliteReader(str(path))
        else:
            reader = PostgresReader(libpq_conninfo(url), pool_size)
            await reader.open()
        return cls(url, engine, reader, clock or SystemClock())

    async def search(self, query: RecordQuery) -> RecordPage:
        """One page of persons matching `query`, and the number of all matches."""
        if query.event_types and not any(e in EVENT_COLUMNS for e in query.event_types):
            return RecordPage([], 0)
        plan = _fast_plan(query)
        if plan is not None:
            if isinstance(self._reader, SqliteReader):
                rows = self._reader.lookup(*plan)
            else:
                rows = await self._reader.lookup(*plan)
            return _page(rows, query.page)
        statement = page_statement(query)  # raises ItemRejection before any I/O
        return await anyio.to_thread.run_sync(self._search_sync, query, statement)

    def _search_sync(self, query: RecordQuery, statement: sa.Select[Any]) -> RecordPage:
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
            if rows:
                total = int(rows[0].total)
            elif query.page.offset == 0:
                total = 0
            else:
                total = int(conn.execute(count_statement(query)).scalar_one())
        return RecordPage([msgspec.Raw(row.dci_json) for row in rows], total)

    async def get(self, id_type: IdentifierType, value: str) -> msgspec.Raw | None:
        """The person holding this identifier (the first by person key), or None."""
        page = await self.search(
            RecordQuery(where=IdentifierLookup(id_type, (value,)), page=Page(1, 1))
        )
        return page.records[0] if page.records else None

    async def upsert_bundle(self, bundle: Mapping[str, Any]) -> UpsertResult:
        """Store and index one FHIR record bundle in one transaction (idempotent)."""
        return await anyio.to_thread.run_sync(self._upsert_sync, bundle)

    def _upsert_sync(self, bundle: Mapping[str, Any]) -> UpsertResult:
        with begin_write(self.engine) as conn:
            return index_bundle(conn, bundle, now=self._clock.now())

    async def count_persons(self) -> int:
        """How many persons searches can find."""

        def count() -> int:
            with self.engine.connect() as conn:
                stmt = sa.select(sa.func.count()).select_from(person_table)
                return int(conn.execute(stmt).scalar_one())

        return await anyio.to_thread.run_sync(count)

    async def aclose(self) -> None:
        await self._reader.aclose()
        self.engine.dispose()
