"""Group commit: the write transactions of concurrent callers share one commit.

Accepting an async request and the worker's tick (record finished attempts, claim due jobs)
each need a short write transaction. Run one by one, every caller pays a thread hop, a
`BEGIN IMMEDIATE`, a commit, and on SQLite a wait for the single writer. `GroupCommit.run`
queues the caller's write function instead; while one transaction runs in a worker thread,
the functions arriving meanwhile queue up and run together in the next one, so under load
N callers share one transaction, one thread hop and one commit. A caller's await returns
only after the commit (its write is durable when it answers).

A function that raises must not fail its neighbours: when a shared transaction fails, it is
rolled back and each of its functions runs again in a transaction of its own, so only the
failing one sees its exception. Write functions therefore touch nothing but the connection
(or only state that a rerun overwrites).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, TypeVar

import anyio.to_thread
import sqlalchemy as sa

from dci_bridge.db.engine import begin_write

__all__ = ["GroupCommit"]

T = TypeVar("T")
Work = Callable[[sa.Connection], Any]

MAX_BATCH: Final = 256
"""Most write functions in one transaction (bounds how long one commit holds the writer)."""


class GroupCommit:
    """Runs write functions on one engine in shared transactions (see the module doc)."""

    def __init__(self, engine: sa.Engine, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._pending: list[tuple[Work, asyncio.Future[Any], bool]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0
        """Transactions committed (tests and benchmarks read it)."""

    async def run(self, work: Callable[[sa.Connection], T], *, urgent: bool = False) -> T:
        """Run `work(conn)` in a write transaction shared with concurrent callers; its
        result once committed, or its exception (the others' writes are not affected).
        `urgent`: a client waits for this write (an Ack); on SQLite its transaction goes
        ahead of background writers waiting for the file (`db.engine.begin_write`)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future, urgent))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    outcomes = await anyio.to_thread.run_sync(
                        self._write,
                        [work for work, _, _ in batch],
                        any(urgent for _, _, urgent in batch),
                    )
                except BaseException as exc:  # cancelled at shutdown, or a thread failure
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future, _), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller went away; the write stands
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._flusher = None

    def _write(self, works: list[Work], urgent: bool) -> list[tuple[bool, Any]]:
        try:
            with begin_write(self.engine, urgent=urgent) as conn:
                results = [work(conn) for work in works]
            self.transactions += 1
            return [(True, result) for result in results]
        except Exception as exc:
            if len(works) == 1:
                return [(False, exc)]
        outcomes: list[tuple[bool, Any]] = []
        for work in works:  # one of them failed: each alone, so only that one fails
            try:
                with begin_write(self.engine, urgent=urgent) as conn:
                    outcomes.append((True, work(conn)))
                self.transactions += 1
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes
