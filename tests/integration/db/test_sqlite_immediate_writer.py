"""`ImmediateWriter`: a short SQLite write on the calling thread only when it can start at
once. When this process's writer lock is held, or another connection (another worker
process) holds SQLite's write lock, it does nothing and says so at once, instead of
waiting on the event loop; otherwise it commits, and rolls back on error."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from dci_bridge.db.engine import ImmediateWriter, create_sync_engine, writer_lock


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_sync_engine(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    yield engine
    engine.dispose()


@pytest.fixture
def writer(engine):
    writer = ImmediateWriter.for_engine(engine)
    assert writer is not None
    yield writer
    writer.close()


def _values(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT v FROM t ORDER BY v")]


def _insert(value: int):
    def work(cursor) -> str:
        cursor.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return "done"

    return work


def test_a_write_that_can_start_commits_on_this_thread(engine, writer):
    assert writer.attempt(_insert(1)) == "done"
    assert writer.attempt(_insert(2)) == "done"
    assert _values(engine) == [1, 2]  # committed: another connection sees them


def test_the_process_writer_lock_held_elsewhere_means_no_write_and_no_wait(engine, writer):
    lock = writer_lock(engine)
    assert lock is not None
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock.held():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    try:
        started = time.monotonic()
        assert writer.attempt(_insert(1)) is None
        assert time.monotonic() - started < 0.5
    finally:
        release.set()
        thread.join(10)
    assert _values(engine) == []
    assert writer.attempt(_insert(1)) == "done"  # and the lock was not kept
    assert lock.try_acquire()
    lock.release()


def test_another_connection_writing_means_no_write_and_no_wait(engine, writer, tmp_path):
    """Another process's transaction (its own connection, outside this process's lock):
    SQLite refuses the write lock at once, although the engine's busy timeout is 30 s."""
    other = sqlite3.connect(tmp_path / "w.sqlite3", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (v) VALUES (99)")
        started = time.monotonic()
        assert writer.attempt(_insert(1)) is None
        assert time.monotonic() - started < 0.5
        other.execute("COMMIT")
    finally:
        other.close()
    assert writer.attempt(_insert(1)) == "done"
    assert _values(engine) == [1, 99]


def test_an_error_in_the_work_rolls_back_and_releases_the_lock(engine, writer):
    def failing(cursor) -> str:
        cursor.execute("INSERT INTO t (v) VALUES (5)")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        writer.attempt(failing)
    assert _values(engine) == []
    assert writer.attempt(_insert(6)) == "done"
    assert _values(engine) == [6]


def test_only_for_sqlite_files(tmp_path):
    memory = create_sync_engine("sqlite://")
    try:
        assert ImmediateWriter.for_engine(memory) is None
    finally:
        memory.dispose()


@pytest.mark.postgres
def test_not_for_postgresql(pg_database):
    engine = create_sync_engine(pg_database)
    try:
        assert ImmediateWriter.for_engine(engine) is None
    finally:
        engine.dispose()
