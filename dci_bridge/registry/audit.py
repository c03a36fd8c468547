"""The audit trail: who was told what, when, and for which declared purpose.

`AuditTrail.record_search(...)` is called for every answered search message (sync here, the
async worker likewise) and `AuditTrail.record(...)` for anything else disclosed. The notify
fan-out does not buffer: it writes its rows (action `notify`, one per queued notify message)
with `insert_rows` in the transaction that queues the notifications, so the audit row and
the outbox job commit together (registry/notify.py). `record...` only append to an in-memory
buffer (a few microseconds on the hot path); a background task writes the buffer in one
transaction every `audit.flush_interval_ms` or when it holds `audit.batch_size` rows, and
`aclose()` writes what is left, so a graceful shutdown loses nothing. A crash (kill -9)
loses at most the last interval's rows of that process; a failed write is retried.

Identifiers and query values are never stored in clear: `hash_value` is HMAC-SHA256 under a
random key kept in the database (`audit_key`, shared by all replicas), so an auditor can
still ask "who searched for UIN X?" (`dci-bridge audit --identifier UIN:X`) while a leaked
audit table does not reveal who was searched. Consent and authorize fields are kept as sent:
they document the declared purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock
from dci_bridge.db.engine import begin_write, create_sync_engine
from dci_bridge.db.tables_audit import AuditEvent, AuditKey
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.protocol.search import (
    IdTypeValueQuery,
    SearchRequest,
    SearchResponse,
    SearchResponseItem,
)
from dci_bridge.registry.policy import Disclosure
from dci_bridge.settings import AuditSettings

_log = logging.getLogger("dci_bridge.audit")
_EVENT = AuditEvent.__table__  # type: ignore[attr-defined]
_KEY = AuditKey.__table__  # type: ignore[attr-defined]
_encoder = msgspec.json.Encoder()
_MAX_BUFFER = 200_000
"""Rows kept in memory while the database refuses writes; beyond, the oldest are dropped
(and counted in the log) rather than exhausting memory."""
_INSERT_COLUMNS = (
    "at",
    "action",
    "sender_id",
    "message_id",
    "transaction_id",
    "status",
    "item_count",
    "record_count",
    "record_ids",
    "detail",
)
_CLEAR_KEYS = frozenset({"type", "attribute_name", "operator", "condition", "seq_num"})
"""Query fields kept in clear (they name what was searched by, not the value)."""
_MAX_PURPOSE_BYTES = 4096


class _PersonId(msgspec.Struct):
    id: str | None = msgspec.field(default=None, name="@id")


_id_decoder = msgspec.json.Decoder(_PersonId)


def record_id_of(raw: Any) -> str | None:
    """The person id (`@id` without `urn:uuid:`) of an encoded DCI person record."""
    try:
        person_id = _id_decoder.decode(raw).id
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
        return None
    if person_id is None:
        return None
    return person_id.removeprefix("urn:uuid:")


@dataclass(slots=True)
class AuditRow:
    """One audit_event row before it is written."""

    at: dt.datetime
    action: str
    sender_id: str
    message_id: str
    status: str
    transaction_id: str | None = None
    item_count: int = 0
    record_ids: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def values(self) -> tuple[Any, ...]:
        """The row in `_INSERT_COLUMNS` order."""
        return (
            _db_time(self.at),
            self.action[:32],
            self.sender_id[:128],
            self.message_id[:128],
            self.transaction_id[:128] if self.transaction_id else None,
            self.status[:32],
            self.item_count,
            len(self.record_ids),
            _encoder.encode(self.record_ids).decode(),
            _encoder.encode(self.detail).decode(),
        )


class AuditTrail:
    """Buffered writer of audit rows for one process (see the module docstring)."""

    def __init__(
        self, engine: sa.Engine, key: bytes, clock: Clock, settings: AuditSettings
    ) -> None:
        self.engine = engine
        self._key = key
        self._clock = clock
        self._settings = settings
        self._buffer: list[tuple[Any, ...]] = []
        self._writing = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, clock: Clock, settings: AuditSettings) -> AuditTrail:
        """Connect, load (or create) the hash key and start the background writer."""
        engine = create_sync_engine(url, pool_size=1)
        key = await asyncio.to_thread(load_key, engine, clock)
        trail = cls(engine, key, clock, settings)
        trail._task = asyncio.create_task(trail._run(), name="audit-writer")
        return trail

    # -- recording (hot path: no I/O) ------------------------------------------------------

    def hash_value(self, value: Any) -> str:
        return hash_with(self._key, value)

    def record(self, row: AuditRow) -> None:
        """Queue one row; written within `flush_interval_ms` (or at shutdown)."""
        self._buffer.append(row.values())
        if len(self._buffer) >= self._settings.batch_size:
            self._wake.set()

    def record_search(
        self,
        header: MsgHeader,
        request: SearchRequest,
        response: SearchResponse | Sequence[SearchResponseItem],
        *,
        action: str = "search",
        status: str = "succ",
        mode: str = "sync",
        disclosures: Sequence[Disclosure] = (),
        policy_revision: int | None = None,
    ) -> None:
        """Audit one answered search message: per item its hashed query, purpose and ids.

        `response` is the answer, or every answered item of every page (async search sends
        an item's further pages as further messages; their records are audited together).
        `disclosures` (from `SearchOutcome`, one per item and page) name the persons returned
        before the sender's disclosure policy removed their `@id`, and what the policy checked.
        """
        answered = response.search_response if isinstance(response, SearchResponse) else response
        answers: dict[str, list[SearchResponseItem]] = {}
        for part in answered:
            answers.setdefault(part.reference_id, []).append(part)
        disclosed: dict[str, list[Disclosure]] = {}
        for disclosure_part in disclosures:
            disclosed.setdefault(disclosure_part.reference_id, []).append(disclosure_part)
        items = []
        all_ids: list[str] = []
        for requested in request.search_request:
            criteria = requested.search_criteria
            found = answers.get(requested.reference_id, [])
            answer = found[0] if found else None
            parts = disclosed.get(requested.reference_id, [])
            disclosure = parts[0] if parts else None
            ids: list[str] = []
            if parts:
                for part_disclosure in parts:
                    ids.extend(i.removeprefix("urn:uuid:") for i in part_disclosure.record_ids)
            else:
                for page in found:
                    if page.data is not None:
                        ids.extend(i for i in map(record_id_of, page.data.reg_records) if i)
            all_ids.extend(ids)
            entry: dict[str, Any] = {
                "reference_id": requested.reference_id,
                "query_type": str(criteria.query_type),
                "query": self._hash_query(criteria.query),
                "status": str(answer.status) if answer is not None else "missing",
                "record_ids": ids,
            }
            for name in ("reg_type", "reg_record_type", "reg_event_type"):
                value = getattr(criteria, name)
                if value is not None:
                    entry[name] = value
            for name in ("consent", "authorize"):
                value = getattr(criteria, name)
                if value is not None:
                    entry[name] = _bounded(value)
            if disclosure is not None:
                if policy_revision is not None:
                    entry["policy_revision"] = policy_revision
                if disclosure.consent.purpose_code is not None:
                    entry["purpose_code"] = disclosure.consent.purpose_code
                if disclosure.total_count is not None:
                    entry["total_count"] = disclosure.total_count
            items.append(entry)
        self.record(
            AuditRow(
                at=self._clock.now(),
                action=action,
                sender_id=header.sender_id,
                message_id=header.message_id,
                transaction_id=request.transaction_id,
                status=status,
                item_count=len(items),
                record_ids=all_ids,
                detail={"mode": mode, "items": items},
            )
        )

    def _hash_query(self, query: Any) -> Any:
        if isinstance(query, IdTypeValueQuery):  # the common case, without a generic walk
            return {"type": query.type, "value": {"hmac": hash_with(self._key, query.value)}}
        return _hash_tree(self._key, msgspec.to_builtins(query), clear=False)

    # -- writing ---------------------------------------------------------------------------

    async def _run(self) -> None:
        interval = self._settings.flush_interval_ms / 1000
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write every buffered row now; returns how many were written (0 on failure)."""
        async with self._lock:
            if not self._buffer:
                return 0
            rows, self._buffer = self._buffer, []
            self._writing = len(rows)
            try:
                await asyncio.to_thread(self._write, rows)
            except Exception:  # keep the rows for the next attempt
                self._buffer[:0] = rows
                dropped = len(self._buffer) - _MAX_BUFFER
                if dropped > 0:
                    del self._buffer[:dropped]
                _log.exception(
                    "audit write failed", extra={"fields": {"pending": len(self._buffer)}}
                )
                return 0
            finally:
                self._writing = 0
            return len(rows)

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        with begin_write(self.engine) as conn:
            _insert(conn, rows)

    @property
    def pending(self) -> int:
        """Rows recorded but not yet committed (buffered or being written)."""
        return len(self._buffer) + self._writing

    async def aclose(self) -> None:
        """Stop the writer and write what is left (retrying a few times)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        for attempt in range(5):
            await self.flush()
            if not self._buffer:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        if self._buffer:
            _log.error("audit rows lost at shutdown", extra={"fields": {"lost": len(self._buffer)}})
        self.engine.dispose()


def insert_rows(conn: sa.Connection, rows: Sequence[AuditRow]) -> None:
    """Write audit rows in the caller's (write) transaction: they commit with it."""
    if rows:
        _insert(conn, [row.values() for row in rows])


def _insert(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    # the driver's executemany: SQLAlchemy's per-row processing costs more than the
    # insert itself at thousands of rows per second
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    if conn.dialect.name == "sqlite":
        rows = [(_sqlite_time(row[0]), *row[1:]) for row in rows]
    columns = ", ".join(_INSERT_COLUMNS)
    markers = ", ".join([marker] * len(_INSERT_COLUMNS))
    sql = f"INSERT INTO audit_event ({columns}) VALUES ({markers})"  # noqa: S608 (constants)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def hash_with(key: bytes, value: Any) -> str:
    """Keyed BLAKE2b (a MAC, like HMAC, in one C call) of a value's text: 32 hex digits."""
    data = value.encode() if isinstance(value, str) else _encoder.encode(value)
    return hashlib.blake2b(data, key=key, digest_size=16).hexdigest()


def _db_time(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC)


def _sqlite_time(at: dt.datetime) -> str:
    """UTC time as SQLAlchemy's SQLite DateTime stores it (text without an offset)."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def _hash_tree(key: bytes, node: Any, *, clear: bool) -> Any:
    """Copy of a query with every value hashed except the names of what is compared."""
    if isinstance(node, dict):
        return {k: _hash_tree(key, v, clear=k in _CLEAR_KEYS) for k, v in node.items()}
    if isinstance(node, list):
        return [_hash_tree(key, v, clear=clear) for v in node]
    if clear or node is None or isinstance(node, bool):
        return node
    return {"hmac": hash_with(key, node)}


def _bounded(value: Any) -> Any:
    encoded = _encoder.encode(value)
    if len(encoded) <= _MAX_PURPOSE_BYTES:
        return value
    return {"truncated": True, "bytes": len(encoded)}


def load_key(engine: sa.Engine, clock: Clock) -> bytes:
    """The database's audit HMAC key; the first caller creates it (race-safe)."""
    for _ in range(3):
        with engine.connect() as conn:
            found = conn.execute(sa.select(_KEY.c.key_hex).where(_KEY.c.id == 1)).scalar()
        if found:
            return bytes.fromhex(found)
        try:
            with begin_write(engine) as conn:
                conn.execute(
                    sa.insert(_KEY).values(
                        id=1, key_hex=secrets.token_hex(32), created_at=clock.now()
                    )
                )
        except sa.exc.IntegrityError:
            continue  # another replica created it first: read theirs
    raise RuntimeError("could not create or read the audit key")


# -- reading (dci-bridge audit) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    sender_id: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    record_id: str | None = None
    identifier: tuple[str, str] | None = None
    """(id_type, value): searches whose query named this identifier (matched by its hash)."""
    subscription_code: str | None = None
    """Notifications sent for this subscription."""
    limit: int | None = None
    newest_first: bool = False


COLUMNS: Sequence[str] = (
    "id",
    "at",
    "action",
    "sender_id",
    "message_id",
    "transaction_id",
    "status",
    "item_count",
    "record_count",
    "record_ids",
    "detail",
)


def read_events(url: str, where: AuditFilter) -> Iterator[dict[str, Any]]:
    """Audit rows matching the filter, oldest first (or newest first), as plain dicts."""
    engine = create_sync_engine(url, pool_size=1)
    try:
        query = sa.select(*(_EVENT.c[name] for name in COLUMNS))
        if where.sender_id:
            query = query.where(_EVENT.c.sender_id == where.sender_id)
        if where.action:
            query = query.where(_EVENT.c.action == where.action)
        if where.since:
            query = query.where(_EVENT.c.at >= where.since.astimezone(dt.UTC))
        if where.until:
            query = query.where(_EVENT.c.at < where.until.astimezone(dt.UTC))
        if where.record_id:
            query = query.where(
                _EVENT.c.record_ids.contains(f'"{where.record_id}"', autoescape=True)
            )
        if where.subscription_code:
            query = query.where(
                _EVENT.c.detail.contains(
                    f'"subscription_code":{_encoder.encode(where.subscription_code).decode()}',
                    autoescape=True,
                )
            )
        if where.identifier:
            with engine.connect() as conn:
                found = conn.execute(sa.select(_KEY.c.key_hex).where(_KEY.c.id == 1)).scalar()
            if not found:
                return
            digest = hash_with(bytes.fromhex(found), where.identifier[1])
            query = query.where(_EVENT.c.detail.contains(f'"hmac":"{digest}"', autoescape=True))
        order = _EVENT.c.id.desc() if where.newest_first else _EVENT.c.id.asc()
        query = query.order_by(order)
        if where.limit:
            query = query.limit(where.limit)
        with engine.connect() as conn:
            for row in conn.execute(query):
                yield _plain(row._mapping)
    finally:
        engine.dispose()


def _plain(mapping: Any) -> dict[str, Any]:
    out = dict(mapping)
    at = out["at"]
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        out["at"] = at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    out["record_ids"] = msgspec.json.decode(out["record_ids"])
    out["detail"] = msgspec.json.decode(out["detail"])
    return out
