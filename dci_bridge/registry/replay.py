"""Replay guard: each (sender_id, message_id) is accepted once, and only while fresh.

A request's `message_ts` must lie within `window_s` of our clock (past or future); inside
the window the pair (sender_id, message_id) is recorded in `seen_message` with
`expires_at = message_ts + window_s`. After that moment the message would fail the window
check anyway, so its row can go: pruning deletes expired rows at most once per
`prune_every_s`, on the request path, in the same thread hop as the insert.

The insert is one `INSERT ... ON CONFLICT DO NOTHING RETURNING` (one statement, one short write
transaction); a conflict means the id was seen before: `DuplicateMessageError` (HTTP 409,
`rjct.message_id.duplicate`). The database is the source of truth, so several workers and
replicas sharing it reject a replay sent to any of them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Final

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dci_bridge.clock import Clock
from dci_bridge.db.engine import begin_write
from dci_bridge.db.tables_security import SeenMessage
from dci_bridge.errors import DuplicateMessageError, RequestError
from dci_bridge.protocol.codes import HeaderStatusReasonCode

__all__ = ["ReplayGuard", "parse_message_ts"]

log = logging.getLogger(__name__)

_TABLE: Final[sa.Table] = SeenMessage.__table__  # type: ignore[attr-defined]
DEFAULT_PRUNE_EVERY_S: Final = 60.0


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
        dialect = engine.dialect.name
        self._insert: Any
        if dialect == "postgresql":
            self._insert = (
                postgresql.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.message_id)
            )
        elif dialect == "sqlite":
            self._insert = (
                sqlite.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.message_id)
            )
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise ValueError(f"unsupported database {dialect}")

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
        now = self.clock.now()
        prune = self._next_prune is None or now >= self._next_prune
        if prune:
            self._next_prune = now + self.prune_every
        fresh = await anyio.to_thread.run_sync(
            self._record,
            sender_id,
            message_id,
            (moment + self.window).astimezone(dt.UTC),  # SQLite stores the wall time only
            now if prune else None,
        )
        if not fresh:
            raise DuplicateMessageError(
                "this sender already sent a message with this message_id",
                path="$.header.message_id",
            )

    def _record(
        self, sender_id: str, message_id: str, expires_at: dt.datetime, prune_before: Any
    ) -> bool:
        with begin_write(self.engine) as conn:
            result = conn.execute(
                self._insert,
                {"sender_id": sender_id, "message_id": message_id, "expires_at": expires_at},
            )
            fresh = result.first() is not None  # rowcount is -1 with psycopg here
            if prune_before is not None:
                pruned = conn.execute(_TABLE.delete().where(_TABLE.c.expires_at < prune_before))
                if pruned.rowcount:
                    log.debug("replay guard pruned %d message ids", pruned.rowcount)
        return fresh

    def prune(self) -> int:
        """Delete every expired id now; returns how many (housekeeping, tests)."""
        with begin_write(self.engine) as conn:
            result = conn.execute(_TABLE.delete().where(_TABLE.c.expires_at < self.clock.now()))
            return int(result.rowcount)


def _ts_error(message: str) -> RequestError:
    return RequestError(
        message, path="$.header.message_ts", reason=HeaderStatusReasonCode.MESSAGE_TS_INVALID
    )
