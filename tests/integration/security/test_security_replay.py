"""The replay guard on SQLite and PostgreSQL: once per (sender, message id), window, pruning,
group commit of concurrent requests."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import sqlalchemy as sa

from dci_bridge.clock import FixedClock, isoformat_z
from dci_bridge.db.engine import create_sync_engine, migrate
from dci_bridge.errors import DuplicateMessageError, RequestError
from dci_bridge.registry.replay import ReplayGuard, parse_message_ts

START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def guard(database_url):
    migrate(database_url)
    engine = create_sync_engine(database_url)
    yield ReplayGuard(engine, clock=FixedClock(START), window_s=300, prune_every_s=60)
    engine.dispose()


def _ts(offset_s: float = 0) -> str:
    return isoformat_z(START + dt.timedelta(seconds=offset_s))


def _count(guard: ReplayGuard) -> int:
    with guard.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM seen_message")).scalar_one())


@pytest.mark.anyio
async def test_each_message_id_once_per_sender(guard):
    await guard.accept("a", "m1", _ts())
    with pytest.raises(DuplicateMessageError) as info:
        await guard.accept("a", "m1", _ts(10))
    assert info.value.http_status == 409
    assert info.value.reason == "rjct.message_id.duplicate"
    await guard.accept("b", "m1", _ts())  # another sender's m1 is another message


@pytest.mark.anyio
@pytest.mark.parametrize("offset_s", [-301, 301, -3600, 86_400])
async def test_message_ts_outside_the_window(guard, offset_s):
    with pytest.raises(RequestError) as info:
        await guard.accept("a", f"m{offset_s}", _ts(offset_s))
    assert info.value.reason == "rjct.message_ts.invalid"
    assert info.value.path == "$.header.message_ts"
    assert _count(guard) == 0


@pytest.mark.anyio
async def test_window_edges_and_offsets(guard):
    await guard.accept("a", "past", _ts(-300))
    await guard.accept("a", "future", _ts(300))
    await guard.accept(
        "a", "offset", START.astimezone(dt.timezone(dt.timedelta(hours=5))).isoformat()
    )
    await guard.accept("a", "leap", "2026-11-23T09:59:60Z")


@pytest.mark.anyio
async def test_concurrent_requests_share_commits_and_replays_in_a_batch_lose(guard):
    results = await asyncio.gather(
        *(guard.accept("a", f"c{n % 30}", _ts()) for n in range(60)), return_exceptions=True
    )
    accepted = [r for r in results if r is None]
    refused = [r for r in results if isinstance(r, DuplicateMessageError)]
    assert len(accepted) == 30
    assert len(refused) == 30
    assert _count(guard) == 30


@pytest.mark.anyio
async def test_expired_ids_are_pruned(guard):
    clock: FixedClock = guard.clock
    await guard.accept("a", "old", _ts())
    clock.advance(601)  # old's message_ts + window is now past
    await guard.accept("a", "new", _ts(601))
    assert _count(guard) == 1
    clock.advance(1000)
    assert guard.prune() == 1
    assert _count(guard) == 0


def test_parse_message_ts():
    assert parse_message_ts("2026-11-23t10:00:00z") == START
    assert parse_message_ts("2026-11-23T15:30:00+05:30") == START
    assert parse_message_ts("2026-11-23T10:00:00.123456789Z") is not None
    assert parse_message_ts("not a time") is None


@pytest.mark.anyio
async def test_on_sqlite_ids_are_written_on_the_loop_without_a_thread_hop(
    guard, database_url, monkeypatch
):
    """Only a pruning batch goes to a worker thread on SQLite (the first batch prunes);
    every other batch is written on the event loop. PostgreSQL always uses the thread."""
    import anyio.to_thread

    hops = 0
    run_sync = anyio.to_thread.run_sync

    async def counting(*args, **kwargs):
        nonlocal hops
        if args[0] == guard._record_many:  # not another test's leftover server thread
            hops += 1
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    for n in range(6):
        await guard.accept("a", f"h{n}", _ts())
    with pytest.raises(DuplicateMessageError):
        await guard.accept("a", "h3", _ts())
    assert _count(guard) == 6
    assert hops == (1 if database_url.startswith("sqlite") else 7)


@pytest.mark.anyio
async def test_while_another_process_writes_ids_wait_in_a_thread_and_still_count(tmp_path):
    """Another connection holds SQLite's write lock (another worker's transaction): the
    loop does not wait for it; the batch goes to the waiting path and is written once the
    other transaction commits. A replay of an id written that way is still refused."""
    import sqlite3

    database_url = f"sqlite:///{tmp_path / 'replay.sqlite3'}"
    migrate(database_url)
    engine = create_sync_engine(database_url)
    guard = ReplayGuard(engine, clock=FixedClock(START), window_s=300, prune_every_s=60)
    await guard.accept("a", "first", _ts())  # the pruning batch, out of the way
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        pending = asyncio.ensure_future(guard.accept("a", "during", _ts()))
        started = time.monotonic()
        for _ in range(20):  # the loop keeps running while the batch waits
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 2.0  # not blocked behind the other writer
        assert not pending.done()
        other.execute("COMMIT")
    finally:
        other.close()
    await asyncio.wait_for(pending, 10)
    with pytest.raises(DuplicateMessageError):
        await guard.accept("a", "during", _ts())
    assert _count(guard) == 2
    engine.dispose()
