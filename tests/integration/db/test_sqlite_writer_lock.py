"""SQLite writers of one process take turns on a lock handed over in arrival order.

Without it a writer that finds the file locked by another thread of the same process falls
into SQLite's busy handler and sleeps 1, 2, 5 ... 100 ms between polls: a webhook's 1 ms
inbox write waited up to 200 ms behind a fan-out transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dci_bridge.db.engine import WriterLock, begin_write, create_sync_engine, writer_lock


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def _queue_in_order(lock: WriterLock, names: list[tuple[str, bool]], order: list[str]):
    """Start one thread per name, each queued only once the previous one waits."""
    threads = []
    for name, urgent in names:

        def take(name: str = name, urgent: bool = urgent) -> None:
            with lock.held(first=urgent):
                order.append(name)

        waiting = lock.waiting
        thread = threading.Thread(target=take)
        thread.start()
        _wait_for(lambda waiting=waiting: lock.waiting == waiting + 1)
        threads.append(thread)
    return threads


def test_the_lock_is_handed_to_waiters_in_arrival_order() -> None:
    lock = WriterLock()
    order: list[str] = []
    lock.acquire()
    threads = _queue_in_order(lock, [("b", False), ("c", False), ("d", False)], order)
    assert order == []  # all of them wait while it is held
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == ["b", "c", "d"]
    assert lock.waiting == 0


def test_a_releasing_thread_cannot_take_the_lock_straight_back() -> None:
    lock = WriterLock()
    order: list[str] = []
    lock.acquire()
    threads = _queue_in_order(lock, [("waiter", False)], order)
    lock.release()
    with lock.held():  # the backlog writer comes again at once: it queues behind the waiter
        order.append("again")
    for thread in threads:
        thread.join(10)
    assert order == ["waiter", "again"]


def test_urgent_writers_go_ahead_of_background_ones_but_not_of_each_other() -> None:
    lock = WriterLock()
    order: list[str] = []
    lock.acquire()
    threads = _queue_in_order(
        lock, [("tick", False), ("inbox-1", True), ("fanout", False), ("inbox-2", True)], order
    )
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == ["inbox-1", "inbox-2", "tick", "fanout"]


def test_a_nested_write_in_one_thread_fails_at_once_instead_of_hanging() -> None:
    lock = WriterLock()
    with lock.held(), pytest.raises(RuntimeError, match="inside another"):
        lock.acquire()
    with lock.held():  # and the lock still works
        pass


def test_two_engines_on_one_file_queue_on_the_same_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    first, second = create_sync_engine(url), create_sync_engine(url)
    try:
        with begin_write(first) as conn:
            conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
        lock = writer_lock(first)
        assert lock is not None
        assert writer_lock(second) is lock
        got: list[int] = []

        def second_writer() -> None:
            with begin_write(second, urgent=True) as conn:
                conn.execute(sa.text("INSERT INTO t VALUES (2)"))
                got.append(2)

        with begin_write(first) as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            thread = threading.Thread(target=second_writer)
            thread.start()
            # it waits on our lock, not inside SQLite's busy handler
            _wait_for(lambda: lock.waiting == 1)
            assert got == []
        thread.join(10)
        assert got == [2]
        with first.connect() as conn:
            assert conn.execute(sa.text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]
    finally:
        first.dispose()
        second.dispose()


def test_postgresql_engines_have_no_process_lock() -> None:
    engine = create_sync_engine("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        assert writer_lock(engine) is None
    finally:
        engine.dispose()
