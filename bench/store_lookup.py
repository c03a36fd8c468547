"""Micro-benchmark: microseconds per identifier search through `EmbeddedFhirStore.search`.

    python bench/store_lookup.py [--persons 20000] [--lookups 20000] [--sqlite PATH]
                                 [--pg postgresql://postgres@127.0.0.1:5432/dci_bench] [--no-pg]

Seeds each store once (a store that already holds persons is reused), then runs prebuilt
`idtype-value` queries (UIN, NID, BRN, DRN, MRN, record and tracking ids, misses included)
on one event loop, one at a time and 32 at a time, and reports CPU and wall microseconds
per search (CPU is what limits requests/s on a busy server).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from dci_bridge.db.engine import create_sync_engine
from dci_bridge.protocol.codes import IdentifierType
from dci_bridge.records.query import IdentifierLookup, Page, RecordQuery
from dci_bridge.records.seed import seed_store
from dci_bridge.records.store import EmbeddedFhirStore


def _queries(url: str, count: int) -> list[RecordQuery]:
    engine = create_sync_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id_type, value FROM person_identifier")).all()
    engine.dispose()
    rng = random.Random(1)
    picked = rng.choices(rows, k=count)
    queries = []
    for i, (kind, value) in enumerate(picked):
        id_type = IdentifierType(kind)
        if id_type is IdentifierType.UIN and i % 2:
            id_type = IdentifierType.NID
        if i % 10 == 0:
            value = f"missing-{i}"
        queries.append(RecordQuery(where=IdentifierLookup(id_type, (value,)), page=Page(1, 10)))
    return queries


async def _measure(
    url: str, queries: list[RecordQuery], concurrency: int
) -> tuple[float, float, int]:
    store = await EmbeddedFhirStore.open(url)
    try:
        for query in queries[:500]:  # warm caches and prepared statements
            await store.search(query)
        found = 0

        async def worker(chunk: list[RecordQuery]) -> None:
            nonlocal found
            for query in chunk:
                page = await store.search(query)
                found += page.total_count  # after the await: no lost updates between workers

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(queries[i::concurrency]) for i in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await store.aclose()
    return cpu / len(queries) * 1e6, wall / len(queries) * 1e6, found


async def _run(label: str, url: str, persons: int, lookups: int) -> None:
    started = time.perf_counter()
    count = await seed_store(url, persons)
    print(f"{label}: {count} persons ready in {time.perf_counter() - started:.1f} s")
    queries = _queries(url, lookups)
    for concurrency in (1, 32):
        cpu, wall, found = await _measure(url, queries, concurrency)
        print(f"{label}: {cpu:.1f} us CPU, {wall:.1f} us wall per identifier search, "
              f"{concurrency} at a time ({len(queries)} searches, {found} found)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--sqlite", type=Path, default=None)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/dci_bench")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    path = args.sqlite or Path(tempfile.gettempdir()) / f"dci_bench_{args.persons}.sqlite3"
    asyncio.run(_run("sqlite", f"sqlite:///{path}", args.persons, args.lookups))
    if not args.no_pg:
        import psycopg

        admin, name = args.pg.rsplit("/", 1)
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        asyncio.run(_run("postgresql", args.pg, args.persons, args.lookups))


if __name__ == "__main__":
    main()
