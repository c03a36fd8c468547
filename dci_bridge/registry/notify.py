"""Notify fan-out: one registered OpenCRVS event -> one notify per matching subscription.

`Fanout.fan_out` runs inside the ingest's write transaction, right after the record was
indexed: it claims the (record, event) pair in `notify_event` (a pair already there means
this event was fanned out before, so nothing happens), reads the record's subject persons
from the store, matches them against the active subscriptions for the event type
(`matching.matching`, a pure function) and hands one `NotifyJob` per match to the
`NotifySink` in the SAME transaction: the outbox (delivery/) sends, signs, encrypts and
retries. Subscriptions with a `frequency` collect their events in `notify_pending` instead;
`flush_batches` sends them as one notify message per subscription when the schedule is due.

Disclosure policies (registry/policy.py), when on, are applied at the moment a notify is
queued, under the subscriber's policy as committed then (`PolicySource.current`, read in
this transaction, not a cache): a subscription whose sender has no policy, or whose event
type or filter is outside it (the policy was narrowed after subscribing), is skipped (its
events are withheld, counted in the log); every record is minimised (`minimise_all`, the same
projection and derived answers as search). Batched events are stored whole and minimised when
the batch is sent, under the policy current then. Every queued notify is an audit row
(action `notify`: subscriber, subscription code, person ids, time) written in the same
transaction as the outbox rows, so a notify is queued exactly when its audit row commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock, isoformat_z
from dci_bridge.db.tables_subscriptions import NotifyEvent, NotifyPending
from dci_bridge.errors import ItemRejection
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
from dci_bridge.registry.audit import AuditRow, insert_rows, record_id_of
from dci_bridge.registry.callbacks import NotifyJob, NotifySink
from dci_bridge.registry.ids import IdSource
from dci_bridge.registry.matching import PersonFacts, facts_from_row, matching
from dci_bridge.registry.policy import CompiledPolicy
from dci_bridge.registry.policy_store import PolicySource
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
        *,
        policies: PolicySource | None = None,
    ) -> None:
        """`policies` None turns disclosure policies off (every record sent whole)."""
        self.subscriptions = subscriptions
        self.sink = sink
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.policies = policies
        self.audit = settings.audit.enabled

    def _policies(
        self, conn: sa.Connection, subs: Sequence[ActiveSubscription], event: EventType
    ) -> list[tuple[ActiveSubscription, CompiledPolicy | None]]:
        """The subscriptions still within their sender's current policy, with that policy
        (None: policies are off); the others are left out and counted in the log."""
        if self.policies is None:
            return [(sub, None) for sub in subs]
        current = self.policies.current(conn, {sub.sender_id for sub in subs})
        kept: list[tuple[ActiveSubscription, CompiledPolicy | None]] = []
        for sub in subs:
            policy = current.get(sub.sender_id)
            if policy is None:
                continue
            try:
                policy.allows_subscription(
                    reg_type=None,
                    event_types=(event,),
                    filter_type=sub.filter_type,
                    filter_expr=sub.rule.where,
                )
            except ItemRejection:
                continue
            kept.append((sub, policy))
        if len(kept) < len(subs):
            log.info(
                "notify withheld: outside the subscriber's policy",
                extra={"subscriptions": len(subs) - len(kept)},
            )
        return kept

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
        person_ids = _ids(records)
        jobs: list[NotifyJob] = []
        audit: list[AuditRow] = []
        minimised: dict[bytes, list[msgspec.Raw]] = {}
        for sub, policy in self._policies(conn, list(matched.values()), event):
            if sub.frequency is not None:
                item = self._item(sub, event, records, now)  # minimised when sent
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
                sent = records
                if policy is not None:  # subscribers sharing a policy document share the work
                    cached = minimised.get(policy.key)
                    if cached is None:
                        cached = policy.minimise_all(records, now.date())
                        minimised[policy.key] = cached
                    sent = cached
                item = self._item(sub, event, sent, now)
                job = self._job(sub, [item], now)
                jobs.append(job)
                audit.append(self._audit_row(job, sub, policy, [person_ids], event, now))
        if jobs:
            self.sink.enqueue_notify(conn, jobs, now)
        if audit and self.audit:
            insert_rows(conn, audit)
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

    def _audit_row(
        self,
        job: NotifyJob,
        sub: ActiveSubscription,
        policy: CompiledPolicy | None,
        ids_per_item: Sequence[list[str]],
        event: EventType | None,
        now: dt.datetime,
    ) -> AuditRow:
        """The audit row of one queued notify: who, which subscription, which persons."""
        message: NotifyEventRequest = job.message
        detail: dict[str, object] = {
            "mode": "batch" if sub.frequency is not None else "event",
            "subscription_code": sub.code,
            "items": [
                {"reference_id": item.reference_id, "record_ids": ids}
                for item, ids in zip(message.notify_event, ids_per_item, strict=True)
            ],
        }
        if event is not None:
            detail["reg_event_type"] = event_type_wire(event)
        if policy is not None:
            detail["policy_revision"] = policy.revision
        return AuditRow(
            at=now,
            action="notify",
            sender_id=sub.sender_id,
            message_id=job.header.message_id,
            transaction_id=sub.transaction_id,
            status="queued",
            item_count=len(message.notify_event),
            record_ids=[i for ids in ids_per_item for i in ids],
            detail=detail,
        )

    # --- batched subscriptions ---------------------------------------------------------------

    def flush_batches(self, conn: sa.Connection, now: dt.datetime) -> int:
        """Send the collected events of every batched subscription that is due; how many sent."""
        sent = 0
        due = self.subscriptions.due_batches(conn, now)
        allowed = {sub.code: policy for sub, policy in self._batch_policies(conn, due)}
        audit: list[AuditRow] = []
        for sub in due:
            rows = conn.execute(
                sa.select(pending_table.c.id, pending_table.c.item_json)
                .where(pending_table.c.subscription_code == sub.code)
                .order_by(pending_table.c.id)
            ).all()
            limit = self.settings.subscriptions.max_batch_events
            jobs: list[NotifyJob] = []
            if sub.code in allowed:
                policy = allowed[sub.code]
                for start in range(0, len(rows), limit):
                    chunk = rows[start : start + limit]
                    items, ids = self._minimised(
                        [_ITEM_DECODER.decode(r.item_json) for r in chunk], policy, now
                    )
                    job = self._job(sub, items, now)
                    jobs.append(job)
                    audit.append(self._audit_row(job, sub, policy, ids, None, now))
            if jobs:
                self.sink.enqueue_notify(conn, jobs, now)
                sent += len(jobs)
            if rows:
                conn.execute(
                    pending_table.delete().where(pending_table.c.id.in_([r.id for r in rows]))
                )
            assert sub.frequency is not None
            self.subscriptions.set_next_batch(conn, sub.code, next_run(sub.frequency, now))
        if audit and self.audit:
            insert_rows(conn, audit)
        return sent

    def _batch_policies(
        self, conn: sa.Connection, due: Sequence[ActiveSubscription]
    ) -> list[tuple[ActiveSubscription, CompiledPolicy | None]]:
        kept: list[tuple[ActiveSubscription, CompiledPolicy | None]] = []
        for event in sorted({sub.rule.event_type for sub in due}, key=lambda e: e.value):
            kept.extend(self._policies(conn, [s for s in due if s.rule.event_type is event], event))
        return kept

    def _minimised(
        self, items: Sequence[NotifyEventItem], policy: CompiledPolicy | None, now: dt.datetime
    ) -> tuple[list[NotifyEventItem], list[list[str]]]:
        """Collected items with their records minimised under `policy` (stored whole), and
        the person ids of each item (for the audit trail)."""
        out: list[NotifyEventItem] = []
        ids: list[list[str]] = []
        for item in items:
            raw = item.data.reg_records
            listed = raw if isinstance(raw, list) else [raw]
            records = [msgspec.Raw(_ITEM.encode(r)) for r in listed]
            ids.append(_ids(records))
            if policy is not None:
                records = policy.minimise_all(records, now.date())
            data = msgspec.structs.replace(item.data, reg_records=list(records))
            out.append(msgspec.structs.replace(item, data=data))
        return out, ids


def _ids(records: Sequence[msgspec.Raw]) -> list[str]:
    """Person ids of encoded records (audit trail), before minimisation removes them."""
    return [found for found in (record_id_of(r) for r in records) if found is not None]
