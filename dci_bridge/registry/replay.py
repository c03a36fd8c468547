"""Replay guard: each (sender_id, message_id) is accepted once, and only while fresh.

A request's `message_ts` must lie within `window_s` of our clock (past or future); inside
the window the pair (sender_id, message_id) is recorded in `seen_message` with
`expires_at = message_ts + window_s`. After that moment the message would fail the window
check anyway, so its row can go: pruning deletes expired rows at most once per
`prune_every_s`, on the request path, in the same thread hop as the insert.

Ids go in with `INSERT ... ON CONFLICT DO NOTHING RETURNING`; a conflict means the id was
seen before: `DuplicateMessageError` (HTTP 409, `rjct.message_id.duplicate`). The writes are
group-committed: the ids of requests arriving while a transaction is written queue up and go
into the next transaction together, so concurrent requests share one commit (SQLite has a
single writer; a commit per request would serialise them). On a SQLite file the transaction
runs on the event loop itself when it can start at once (`db.engine.ImmediateWriter`: the
write costs less than a hop to a worker thread and back), else in a worker thread, which
waits for the other writers; pruning always runs in the thread, and checkpoints the WAL
there (the loop's connection never does). The database is the source of truth, so several
workers and replicas sharing it reject a replay sent to any of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import weakref
from functools import partial
from typing import Any, Final

import anyio.to_thread
import sqlalchemy as sa

from dci_bridge.clock import Clock
from dci_bridge.db.engine import ImmediateWriter, raw_write
from dci_bridge.errors import DuplicateMessageError, RequestError
from dci_bridge.protocol.codes import HeaderStatusReasonCode

__all__ = ["ReplayGuard", "parse_message_ts"]

log = logging.getLogger(__name__)

DEFAULT_PRUNE_EVERY_S: Final = 60.0
_CHUNK: Final = 200
"""Most ids per INSERT statement (SQLite allows 32766 parameters)."""


def parse_message_ts(text: str) -> dt.datetime | None:
    """An RFC 3339 date-time (already pattern-checked) as an aware datetime, or None."""
    value = text.upper()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        try:  # a leap second (":60") counts as the second before it
            moment = dt.datetime.fromisoformat(value[:17] + "59" + value[19:])
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else None


class ReplayGuard:
    """Accepts each sender's message id once inside the `message_ts` window."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock,
        window_s: float = 300.0,
        prune_every_s: float = DEFAULT_PRUNE_EVERY_S,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.window = dt.timedelta(seconds=window_s)
        self.prune_every = dt.timedelta(seconds=prune_every_s)
        self._next_prune: dt.datetime | None = None
        self._pending: list[tuple[tuple[str, str, dt.datetime], asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._dialect = engine.dialect.name
        if self._dialect not in {"sqlite", "postgresql"}:  # pragma: no cover
            raise ValueError(f"unsupported database {self._dialect}")
        self._mark = "?" if self._dialect == "sqlite" else "%s"
        """The driver's parameter marker (statements go through the driver, `raw_write`)."""
        self._sql_cache: dict[int, str] = {}
        self._now_writer = ImmediateWriter.for_engine(engine)
        if self._now_writer is not None:
            weakref.finalize(self, self._now_writer.close)

    def check_window(self, message_ts: str) -> dt.datetime:
        """The parsed `message_ts`; raises `RequestError` (rjct.message_ts.invalid) when it is
        outside the window."""
        moment = parse_message_ts(message_ts)
        if moment is None:
            raise _ts_error("message_ts is not a valid date-time")
        now = self.clock.now()
        if moment < now - self.window:
            raise _ts_error(
                f"message_ts is more than {int(self.window.total_seconds())} s in the past"
            )
        if moment > now + self.window:
            raise _ts_error(
                f"message_ts is more than {int(self.window.total_seconds())} s in the future"
            )
        return moment

    async def accept(self, sender_id: str, message_id: str, message_ts: str) -> None:
        """Record the message or raise: `RequestError` for a stale or future `message_ts`,
        `DuplicateMessageError` for a message id this sender used before."""
        moment = self.check_window(message_ts)
        if len(message_id) > 99:
            raise RequestError(
                "message_id is longer than 99 characters", path="$.header.message_id"
            )
        expires_at = (moment + self.window).astimezone(dt.UTC)  # SQLite keeps wall time only
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(((sender_id, message_id, expires_at), future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        if not await future:
            raise DuplicateMessageError(
                "this sender already sent a message with this message_id",
                path="$.header.message_id",
            )

    async def _flush(self) -> None:
        """Write what is pending in one transaction, again until nothing is (group commit:
        requests arriving during a write share the next one)."""
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                now = self.clock.now()
                prune = self._next_prune is None or now >= self._next_prune
                if prune:
                    self._next_prune = now + self.prune_every
                rows = [row for row, _ in batch]
                try:
                    fresh = None
                    if self._now_writer is not None and not prune:
                        fresh = self._now_writer.attempt(partial(self._insert_many, rows))
                    if fresh is None:  # PostgreSQL, pruning, or another writer at work
                        fresh = await anyio.to_thread.run_sync(
                            self._record_many, rows, now if prune else None
                        )
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), accepted in zip(batch, fresh, strict=True):
                    if not future.done():
                        future.set_result(accepted)
        finally:
            self._flusher = None

    def _record_many(
        self, rows: list[tuple[str, str, dt.datetime]], prune_before: dt.datetime | None
    ) -> list[bool]:
        """Insert the ids in one transaction (waiting for the other writers: a worker
        thread's path); which of them were new. Through the driver (`raw_write`): on the hot
        path SQLAlchemy's per-transaction work would cost several times the write itself."""
        with raw_write(self.engine, urgent=True) as cursor:
            fresh = self._insert_many(rows, cursor)
            if prune_before is not None:
                self._prune(cursor, prune_before)
        if prune_before is not None and self._dialect == "sqlite":
            with self.engine.connect() as conn:  # the loop's writer never checkpoints
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        return fresh

    def _insert_many(self, rows: list[tuple[str, str, dt.datetime]], cursor: Any) -> list[bool]:
        """Insert the ids in the cursor's transaction; which of them were new. One multi-row
        `INSERT ... ON CONFLICT DO NOTHING RETURNING` per chunk."""
        first: dict[tuple[str, str], int] = {}
        for index, (sender_id, message_id, _) in enumerate(rows):
            first.setdefault((sender_id, message_id), index)  # a repeat in the batch is a replay
        unique = [rows[index] for index in first.values()]
        inserted: set[tuple[str, str]] = set()
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            params: list[Any] = []
            for sender_id, message_id, expires_at in chunk:
                params += (sender_id, message_id, self._time(expires_at))
            cursor.execute(self._insert_sql(len(chunk)), tuple(params))
            inserted.update((row[0], row[1]) for row in cursor.fetchall())
        return [
            first[(sender_id, message_id)] == index and (sender_id, message_id) in inserted
            for index, (sender_id, message_id, _) in enumerate(rows)
        ]

    def _insert_sql(self, count: int) -> str:
        sql = self._sql_cache.get(count)
        if sql is None:
            mark = self._mark
            values = ", ".join([f"({mark}, {mark}, {mark})"] * count)
            sql = (
                "INSERT INTO seen_message (sender_id, message_id, expires_at) VALUES "  # noqa: S608
                f"{values} ON CONFLICT DO NOTHING RETURNING sender_id, message_id"
            )
            if len(self._sql_cache) < 64:
                self._sql_cache[count] = sql
        return sql

    def _time(self, moment: dt.datetime) -> Any:
        if self._dialect == "sqlite":  # the text SQLAlchemy's DateTime stores on SQLite
            return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def _prune(self, cursor: Any, before: dt.datetime) -> int:
        """Delete the ids that expired before `before`, in the caller's transaction."""
        cursor.execute(
            f"DELETE FROM seen_message WHERE expires_at < {self._mark}",  # noqa: S608
            (self._time(before),),
        )
        pruned = max(int(cursor.rowcount), 0)
        if pruned:
            log.debug("replay guard pruned %d message ids", pruned)
        return pruned

    def prune(self) -> int:
        """Delete every expired id now; returns how many (housekeeping, tests)."""
        with raw_write(self.engine) as cursor:
            return self._prune(cursor, self.clock.now())


def _ts_error(message: str) -> RequestError:
    return RequestError(
        message, path="$.header.message_ts", reason=HeaderStatusReasonCode.MESSAGE_TS_INVALID
    )
