"""OpenCRVS event ingest: accept a webhook delivery fast, process it after.

`receive_v1` runs on the request path: it decodes the v1 webhook payload, checks the topic
and that every bundle maps (`records.fhir_map.map_bundle`, pure and fast), and stores the raw
body in `webhook_inbox` (status `pending`). An exact re-delivery (same bytes) is found by
its SHA-256 and answered as a duplicate. Anything unusable is kept in `webhook_quarantine`
with the reason and raises `WebhookRejected` (HTTP 400) so the operator sees what OpenCRVS
sent. Signature checks happen before this, in the API layer: an unsigned body is never stored.

`process_pending` runs after the answer (the app's ingest loop): for each pending inbox row,
ONE write transaction indexes the bundle into the embedded store, fans the event out to the
matching subscriptions (`notify.Fanout`, which enqueues notify jobs on the outbox) and marks
the row done. A crash anywhere leaves the row pending, and the next pass (or the next start)
processes it again; `notify_event` makes the fan-out happen once per (record, event), so
nothing is lost and nothing is notified twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock
from dci_bridge.db.engine import begin_write
from dci_bridge.db.tables_subscriptions import WebhookInbox, WebhookQuarantine
from dci_bridge.errors import RequestError
from dci_bridge.records._fhir import MappingError
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.indexer import index_bundle
from dci_bridge.registry.ids import IdSource
from dci_bridge.registry.notify import Fanout
from dci_bridge.registry.v2hook import FieldMap, v2_bundle
from dci_bridge.settings import Settings
from dci_bridge.upstream.webhook import TOPICS

__all__ = [
    "IngestLoop",
    "IngestService",
    "Received",
    "WebhookRejected",
    "inbox_table",
    "quarantine_table",
]

log = logging.getLogger("dci_bridge.ingest")

inbox_table: sa.Table = WebhookInbox.__table__  # type: ignore[attr-defined]
quarantine_table: sa.Table = WebhookQuarantine.__table__  # type: ignore[attr-defined]

PENDING, DONE, FAILED = "pending", "done", "failed"


class WebhookRejected(RequestError):
    """A webhook payload we cannot use; it was quarantined (`quarantine_id`)."""

    def __init__(self, message: str, *, reason: str, path: str | None, quarantine_id: str) -> None:
        super().__init__(message, path=path)
        self.reason_key = reason
        self.quarantine_id = quarantine_id


@dataclass(frozen=True, slots=True)
class Received:
    inbox_id: str
    duplicate: bool


class _Hub(msgspec.Struct, frozen=True):
    topic: str


class _Event(msgspec.Struct, frozen=True):
    hub: _Hub
    context: list[Any]


class WebhookPayload(msgspec.Struct, frozen=True):
    """What OpenCRVS v1.x POSTs: `{timestamp, id, event: {hub: {topic}, context: [Bundle]}}`."""

    event: _Event
    timestamp: str | None = None
    id: str | None = None


_PAYLOAD = msgspec.json.Decoder(WebhookPayload)


@dataclass(frozen=True, slots=True)
class _Problem:
    reason: str
    message: str
    path: str | None = None


def parse_v1(body: bytes) -> tuple[str, list[Mapping[str, Any]]]:
    """(topic, bundles) of a v1 webhook body; raises `_Invalid` naming what is wrong."""
    try:
        payload = _PAYLOAD.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        path = text.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in text else None
        raise _Invalid(_Problem("schema", text.split(" - at `")[0], path)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise _Invalid(_Problem("malformed_json", "body is not valid JSON")) from None
    topic = payload.event.hub.topic
    if topic not in TOPICS:
        raise _Invalid(
            _Problem("unknown_topic", "unknown event topic", "$.event.hub.topic"),
        )
    if not payload.event.context:
        raise _Invalid(_Problem("missing_bundle", "no FHIR bundle in the event", "$.event.context"))
    bundles: list[Mapping[str, Any]] = []
    for index, bundle in enumerate(payload.event.context):
        path = f"$.event.context[{index}]"
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise _Invalid(_Problem("not_a_bundle", "context item is not a FHIR Bundle", path))
        try:
            map_bundle(bundle)
        except MappingError as exc:
            raise _Invalid(
                _Problem("unmappable", exc.message, path + exc.path.removeprefix("$"))
            ) from None
        bundles.append(bundle)
    return topic, bundles


class _Invalid(Exception):
    def __init__(self, problem: _Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class IngestService:
    """Webhook inbox: receive (request path) and process (after the answer). Synchronous:
    callers run these in a worker thread."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        clock: Clock,
        ids: IdSource,
        fanout: Fanout,
        field_map: FieldMap | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.fanout = fanout
        self.field_map = field_map or FieldMap.from_settings(settings)

    # --- request path --------------------------------------------------------------------

    def receive_v1(self, body: bytes) -> Received:
        """Check and store one v1 webhook delivery; raises `WebhookRejected`."""
        try:
            topic, _ = parse_v1(body)
        except _Invalid as exc:
            raise self._quarantine("v1", body, exc.problem) from None
        return self._store("v1", topic, body)

    def receive_v2(self, event_type: str, action: str, body: bytes) -> Received:
        """Check and store one v2 hook delivery (event document); raises `WebhookRejected`."""
        try:
            map_bundle(v2_bundle(event_type, body, self.field_map))
        except MappingError as exc:
            raise self._quarantine(
                "v2", body, _Problem("unmappable", exc.message, exc.path)
            ) from None
        return self._store("v2", event_type, body)

    def _store(self, source: str, topic: str, body: bytes) -> Received:
        digest = hashlib.sha256(body).hexdigest()
        inbox_id = self.ids.new_id()
        now = self.clock.now()
        try:
            with begin_write(self.engine, urgent=True) as conn:
                found = conn.execute(
                    sa.select(inbox_table.c.id).where(inbox_table.c.body_sha256 == digest)
                ).scalar_one_or_none()
                if found is not None:
                    return Received(found, duplicate=True)
                conn.execute(
                    inbox_table.insert(),
                    {
                        "id": inbox_id,
                        "source": source,
                        "topic": topic,
                        "body_sha256": digest,
                        "body": body,
                        "received_at": now,
                        "status": PENDING,
                        "attempts": 0,
                        "notified": 0,
                    },
                )
        except sa.exc.IntegrityError:
            # the same delivery stored at the same moment by another replica (or worker)
            with self.engine.connect() as conn:
                found = conn.execute(
                    sa.select(inbox_table.c.id).where(inbox_table.c.body_sha256 == digest)
                ).scalar_one_or_none()
            if found is None:
                raise
            return Received(found, duplicate=True)
        log.info("webhook stored", extra={"inbox_id": inbox_id, "topic": topic})
        return Received(inbox_id, duplicate=False)

    def _quarantine(self, source: str, body: bytes, problem: _Problem) -> WebhookRejected:
        qid = self.ids.new_id()
        with begin_write(self.engine) as conn:
            conn.execute(
                quarantine_table.insert(),
                {
                    "id": qid,
                    "source": source,
                    "received_at": self.clock.now(),
                    "reason": problem.reason,
                    "message": problem.message[:999],
                    "path": (problem.path or None) and problem.path[:200],
                    "body": body,
                },
            )
        log.warning("webhook quarantined", extra={"quarantine_id": qid, "reason": problem.reason})
        return WebhookRejected(
            f"{problem.message} (quarantined as {qid})",
            reason=problem.reason,
            path=problem.path,
            quarantine_id=qid,
        )

    # --- after the answer ----------------------------------------------------------------

    def pending_ids(self, limit: int | None = None) -> list[str]:
        retry_before = self.clock.now() - dt.timedelta(
            seconds=self.settings.opencrvs_webhook.retry_failed_after_s
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(inbox_table.c.id, inbox_table.c.attempts, inbox_table.c.processed_at)
                .where(inbox_table.c.status == PENDING)
                .order_by(inbox_table.c.received_at, inbox_table.c.id)
                .limit(limit or self.settings.opencrvs_webhook.process_batch)
            ).all()
        return [
            r.id
            for r in rows
            if r.attempts == 0 or r.processed_at is None or _aware(r.processed_at) <= retry_before
        ]

    def process_pending(self) -> int:
        """Process what is pending (one transaction per delivery); returns how many were done."""
        done = 0
        for inbox_id in self.pending_ids():
            if self.process(inbox_id):
                done += 1
        return done

    def process(self, inbox_id: str) -> bool:
        """Index one delivery and fan it out, in one transaction. False if not processed."""
        try:
            with begin_write(self.engine) as conn:
                row = conn.execute(
                    sa.select(inbox_table)
                    .where(inbox_table.c.id == inbox_id, inbox_table.c.status == PENDING)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    return False
                now = self.clock.now()
                record_id, notified = self._apply(conn, row, now)
                conn.execute(
                    inbox_table.update()
                    .where(inbox_table.c.id == inbox_id)
                    .values(
                        status=DONE,
                        processed_at=now,
                        attempts=row.attempts + 1,
                        record_id=record_id,
                        notified=notified,
                        error=None,
                    )
                )
        except Exception as exc:  # any failure is recorded, never lost
            self._failed(inbox_id, exc)
            return False
        log.info("webhook processed", extra={"inbox_id": inbox_id, "notified": notified})
        return True

    def _apply(self, conn: sa.Connection, row: Any, now: dt.datetime) -> tuple[str | None, int]:
        bundles: list[Mapping[str, Any]]
        if row.source == "v2":
            bundles = [v2_bundle(row.topic, row.body, self.field_map)]
        else:
            bundles = parse_v1(row.body)[1]
        record_id: str | None = None
        notified = 0
        for bundle in bundles:
            result = index_bundle(conn, bundle, now=now)
            record_id = result.record_id
            if result.is_registered:
                notified += self.fanout.fan_out(conn, result, inbox_id=row.id, now=now)
        return record_id, notified

    def _failed(self, inbox_id: str, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"[:999]
        log.warning("webhook processing failed", extra={"inbox_id": inbox_id})
        with begin_write(self.engine) as conn:
            row = conn.execute(sa.select(inbox_table).where(inbox_table.c.id == inbox_id)).first()
            if row is None:
                return
            attempts = row.attempts + 1
            final = attempts >= self.settings.opencrvs_webhook.max_attempts
            conn.execute(
                inbox_table.update()
                .where(inbox_table.c.id == inbox_id)
                .values(
                    status=FAILED if final else PENDING,
                    attempts=attempts,
                    processed_at=self.clock.now(),
                    error=message,
                )
            )
            if final:
                conn.execute(
                    quarantine_table.insert(),
                    {
                        "id": self.ids.new_id(),
                        "source": row.source,
                        "received_at": self.clock.now(),
                        "reason": "processing_failed",
                        "message": message,
                        "path": None,
                        "body": row.body,
                        "inbox_id": inbox_id,
                    },
                )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class IngestLoop:
    """Runs `process_pending` after each delivery (`kick`) and every `interval_s` anyway
    (pending rows left by a crash or a failed attempt), and sends due notify batches."""

    def __init__(
        self,
        ingest: IngestService,
        *,
        interval_s: float = 1.0,
        on_tick: Callable[[], int] | None = None,
        after_pass: Callable[[], None] | None = None,
    ) -> None:
        """`on_tick` runs in the worker thread after each pass (batched notifies; returns how
        many it queued); `after_pass` runs on the event loop when a pass queued anything
        (wake the delivery worker)."""
        self.ingest = ingest
        self.interval_s = interval_s
        self.on_tick = on_tick
        self.after_pass = after_pass
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish the pass under way (its thread holds a connection), then stop."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                done = await anyio.to_thread.run_sync(self._tick)
                if done and self.after_pass is not None:
                    self.after_pass()
            except Exception:  # keep the loop alive; the rows stay pending
                log.exception("ingest pass failed")
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()

    def _tick(self) -> int:
        done = 0
        while processed := self.ingest.process_pending():
            done += processed
        if self.on_tick is not None:
            done += self.on_tick()
        return done
