"""Notify fan-out: one registered OpenCRVS event -> one notify per matching subscription.

`Fanout.fan_out` runs inside the ingest's write transaction, right after the record was
indexed: it claims the (record, event) pair in `notify_event` (a pair already there means
this event was fanned out before, so nothing happens), reads the record's subject persons
from the store, matches them against the active subscriptions for the event type
(`matching.matching`, a pure function) and hands one `NotifyJob` per match to the
`NotifySink` in the SAME transaction: the outbox (delivery/) sends, signs, encrypts and
retries. Subscriptions with a `frequency` collect their events in `notify_pending` instead;
`flush_batches` sends them as one notify message per subscription when the schedule is due.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock, isoformat_z
from dci_bridge.db.tables_subscriptions import NotifyEvent, NotifyPending
from dci_bridge.protocol.codes import (
    EventType,
    RegistryType,
    RequestStatus,
    event_type_wire,
    registry_type_wire,
)
from dci_bridge.protocol.header import MsgCallbackHeader
from dci_bridge.protocol.notify import NotifyEventData, NotifyEventItem, NotifyEventRequest
from dci_bridge.records.indexer import UpsertResult, identifier_table, link_table, person_table
from dci_bridge.records.mapped import SUBJECT_ROLES, RecordEvent
from dci_bridge.registry.callbacks import NotifyJob, NotifySink
from dci_bridge.registry.ids import IdSource
from dci_bridge.registry.matching import PersonFacts, facts_from_row, matching
from dci_bridge.registry.subscriptions import ActiveSubscription, SubscriptionStore, next_run
from dci_bridge.settings import Settings

__all__ = ["Fanout"]

log = logging.getLogger("dci_bridge.notify")

notify_event_table: sa.Table = NotifyEvent.__table__  # type: ignore[attr-defined]
pending_table: sa.Table = NotifyPending.__table__  # type: ignore[attr-defined]

REGISTERED_EVENT = "registered"
"""`notify_event.event_key` of a registration (the only OpenCRVS event that fires)."""

EVENT_OF_RECORD = {
    RecordEvent.BIRTH: EventType.LIVE_BIRTH,
    RecordEvent.DEATH: EventType.DEATH,
    RecordEvent.MARRIAGE: EventType.MARRIAGE,
}

_ITEM = msgspec.json.Encoder()
_ITEM_DECODER = msgspec.json.Decoder(NotifyEventItem)


class Fanout:
    def __init__(
        self,
        subscriptions: SubscriptionStore,
        sink: NotifySink,
        settings: Settings,
        clock: Clock,
        ids: IdSource,
    ) -> None:
        self.subscriptions = subscriptions
        self.sink = sink
        self.settings = settings
        self.clock = clock
        self.ids = ids

    # --- per event -------------------------------------------------------------------------

    def fan_out(
        self, conn: sa.Connection, result: UpsertResult, *, inbox_id: str | None, now: dt.datetime
    ) -> int:
        """Notify the subscriptions this registered record matches; returns how many."""
        event = EVENT_OF_RECORD.get(result.event_type)
        if event is None or not result.is_registered:
            return 0
        claimed = conn.execute(
            sa.select(notify_event_table.c.record_id).where(
                notify_event_table.c.record_id == result.record_id,
                notify_event_table.c.event_key == REGISTERED_EVENT,
            )
        ).first()
        if claimed is not None:
            return 0  # this event was fanned out before (re-delivery or re-processing)
        persons = self._subjects(conn, result.record_id)
        subscriptions = self.subscriptions.active(conn, event, now)
        matched: dict[str, ActiveSubscription] = {}
        for facts, _ in persons:
            for rule in matching((s.rule for s in subscriptions), event, facts, now):
                matched.setdefault(rule.code, next(s for s in subscriptions if s.rule is rule))
        records = [msgspec.Raw(data) for _, data in persons]
        jobs: list[NotifyJob] = []
        for sub in matched.values():
            item = self._item(sub, event, records, now)
            if sub.frequency is not None:
                conn.execute(
                    pending_table.insert(),
                    {
                        "subscription_code": sub.code,
                        "record_id": result.record_id,
                        "event_type": event.value,
                        "item_json": _ITEM.encode(item),
                        "created_at": now,
                    },
                )
            else:
                jobs.append(self._job(sub, [item], now))
        if jobs:
            self.sink.enqueue_notify(conn, jobs, now)
        conn.execute(
            notify_event_table.insert(),
            {
                "record_id": result.record_id,
                "event_key": REGISTERED_EVENT,
                "created_at": now,
                "inbox_id": inbox_id,
                "subscriptions": len(matched),
            },
        )
        if matched:
            log.info("event fanned out", extra={"subscriptions": len(matched)})
        return len(matched)

    def _subjects(self, conn: sa.Connection, record_id: str) -> list[tuple[PersonFacts, bytes]]:
        keys = sorted(
            set(
                conn.execute(
                    sa.select(link_table.c.person_key).where(
                        link_table.c.record_id == record_id,
                        link_table.c.role.in_([r.value for r in SUBJECT_ROLES]),
                    )
                ).scalars()
            )
        )
        found: list[tuple[PersonFacts, bytes]] = []
        for key in keys:
            row = (
                conn.execute(sa.select(person_table).where(person_table.c.person_key == key))
                .mappings()
                .first()
            )
            if row is None:
                continue
            ids = conn.execute(
                sa.select(identifier_table.c.id_type, identifier_table.c.value).where(
                    identifier_table.c.person_key == key
                )
            ).all()
            found.append(
                (facts_from_row(dict(row), [(r[0], r[1]) for r in ids]), bytes(row["dci_json"]))
            )
        return found

    def _item(
        self,
        sub: ActiveSubscription,
        event: EventType,
        records: Sequence[msgspec.Raw],
        now: dt.datetime,
    ) -> NotifyEventItem:
        return NotifyEventItem(
            reference_id=self.ids.new_id(),
            timestamp=isoformat_z(now),
            data=NotifyEventData(
                reg_type=registry_type_wire(RegistryType.CIVIL),
                reg_event_type=event_type_wire(event),
                reg_record_type=sub.notify_record_type,
                reg_records=list(records),
            ),
            locale=sub.locale,
            subscription_code=sub.code,
        )

    def _job(
        self, sub: ActiveSubscription, items: list[NotifyEventItem], now: dt.datetime
    ) -> NotifyJob:
        header = MsgCallbackHeader(
            message_id=self.ids.new_id(),
            message_ts=isoformat_z(now),
            action="notify",
            status=RequestStatus.SUCC,
            total_count=len(items),
            completed_count=len(items),
            sender_id=self.settings.registry.registry_id,
            receiver_id=sub.sender_id,
            meta={"subscription_code": sub.code},
        )
        message = NotifyEventRequest(transaction_id=sub.transaction_id, notify_event=items)
        return NotifyJob("notify", sub.sender_id, sub.notify_url, sub.encrypt, header, message)

    # --- batched subscriptions ---------------------------------------------------------------

    def flush_batches(self, conn: sa.Connection, now: dt.datetime) -> int:
        """Send the collected events of every batched subscription that is due; how many sent."""
        sent = 0
        for sub in self.subscriptions.due_batches(conn, now):
            rows = conn.execute(
                sa.select(pending_table.c.id, pending_table.c.item_json)
                .where(pending_table.c.subscription_code == sub.code)
                .order_by(pending_table.c.id)
            ).all()
            limit = self.settings.subscriptions.max_batch_events
            jobs: list[NotifyJob] = []
            for start in range(0, len(rows), limit):
                chunk = rows[start : start + limit]
                items = [_ITEM_DECODER.decode(r.item_json) for r in chunk]
                jobs.append(self._job(sub, items, now))
            if jobs:
                self.sink.enqueue_notify(conn, jobs, now)
                sent += len(jobs)
            if rows:
                conn.execute(
                    pending_table.delete().where(pending_table.c.id.in_([r.id for r in rows]))
                )
            assert sub.frequency is not None
            self.subscriptions.set_next_batch(conn, sub.code, next_run(sub.frequency, now))
        return sent
