"""Subscriptions: validate and store subscribe requests, unsubscribe, list, match rules.

A subscription belongs to the sender that made it (`sender_id` as authenticated); a sender
sees and cancels only its own. Per subscribe item, the checks and their reason codes:
- `reg_type` other than Civil, `reg_event_type` other than LiveBirth/Death/Marriage, or a
  `notify_record_type` other than Person: `rjct.notify_types.invalid`;
- a `filter` the search translator refuses (unknown attribute, bad operator or value), a
  place filter naming an unknown location, a bad cron expression, or a frequency window that
  is empty or already over: `rjct.notify_details.invalid`;
- more than `subscriptions.max_per_sender` active subscriptions: `rjct.notify_details.invalid`;
- a `reference_id` repeated in one message: `rjct.reference_id.duplicate`;
- outside the sender's disclosure policy (registry/policy.py, `allows_subscription`): a
  registry or event type it may not learn about, `rjct.notify_types.invalid`; a filter type,
  identifier type or attribute it may not search by, `rjct.notify_details.invalid`.
With policies on, a sender without a policy cannot subscribe at all: `err.request.forbidden`
(HTTP 403), nothing stored. The policy is read in the subscribe transaction (not from a
cache). A policy narrowed later does not cancel subscriptions: the fan-out re-checks each
one against the policy current at that moment (registry/notify.py) and skips it while it is
outside, so nothing outside the current policy is ever sent (docs/policies/README.md).
Subscription codes are `sub-` + a fresh unguessable id (at most 99 characters, as the
standard requires). Without `frequency` events are notified as they happen and the
subscription expires after `max_lifetime_days`; with it, events are collected and sent as one
notify per run of the cron schedule between `start_time` and `end_time` (its expiry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger

from dci_bridge.clock import Clock, isoformat_z
from dci_bridge.db.engine import begin_write
from dci_bridge.db.tables_subscriptions import Subscription
from dci_bridge.errors import ForbiddenError, ItemRejection, RequestError
from dci_bridge.protocol.codec import encode
from dci_bridge.protocol.codes import (
    EventType,
    QueryType,
    RecordType,
    RegistryType,
    RequestStatus,
    SubscribeStatusReasonCode,
    SubscriptionStatus,
    TxnType,
    UnsubscribeStatusReasonCode,
    event_type_wire,
    parse_event_type,
    parse_record_type,
    parse_registry_type,
    record_type_wire,
    registry_type_wire,
)
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.protocol.primitives import wire_locale
from dci_bridge.protocol.subscribe import (
    SubscribeRequest,
    SubscribeRequestItem,
    SubscribeResponse,
    SubscribeResponseItem,
    SubscriptionInfo,
    SubscriptionStatusItem,
    UnSubscribeRequest,
    UnSubscribeResponse,
)
from dci_bridge.records.locations import LocationIndex, farajaland
from dci_bridge.records.query import Expr
from dci_bridge.records.translate import translate_filter
from dci_bridge.registry.async_ops import record_transaction
from dci_bridge.registry.callbacks import NotifyJob, NotifySink
from dci_bridge.registry.ids import IdSource
from dci_bridge.registry.matching import SubscriptionRule, place_ids
from dci_bridge.registry.policy_store import PolicySource
from dci_bridge.settings import Settings

__all__ = [
    "ActiveSubscription",
    "SubscriptionService",
    "SubscriptionStore",
    "next_run",
    "parse_cron",
    "subscription_table",
]

subscription_table: sa.Table = Subscription.__table__  # type: ignore[attr-defined]
S = subscription_table.c

SUBSCRIBED = SubscriptionStatus.SUBSCRIBE.value
UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBE.value
SUPPORTED_EVENTS = frozenset({EventType.LIVE_BIRTH, EventType.DEATH, EventType.MARRIAGE})
_INFO = msgspec.json.Encoder()
_INFO_DECODER = msgspec.json.Decoder(SubscriptionInfo)
NOTIFY_TYPES = SubscribeStatusReasonCode.NOTIFY_TYPES_INVALID
NOTIFY_DETAILS = SubscribeStatusReasonCode.NOTIFY_DETAILS_INVALID
_QUARTZ_DOW = {"1": "sun", "2": "mon", "3": "tue", "4": "wed", "5": "thu", "6": "fri", "7": "sat"}


def parse_cron(text: str) -> CronTrigger:
    """A cron schedule: 5 fields (crontab) or 6-7 fields (Quartz, seconds first, `?` allowed).

    Raises ValueError for anything else (Quartz `L`, `W` and `#` are not supported).
    """
    fields = text.split()
    if len(fields) == 5:
        minute, hour, day, month, dow = fields
        second, year = "0", "*"
    elif len(fields) in (6, 7):
        second, minute, hour, day, month, dow = fields[:6]
        year = fields[6] if len(fields) == 7 else "*"
        dow = ",".join(_QUARTZ_DOW.get(part, part) for part in dow.split(","))
    else:
        raise ValueError("a cron expression has 5, 6 or 7 fields")
    if any(mark in text.upper() for mark in ("L", "W", "#")) and not _only_names(dow):
        raise ValueError("cron L, W and # are not supported")
    day = "*" if day == "?" else day
    dow = "*" if dow == "?" else dow
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=dow,
        year=year,
        timezone=dt.UTC,
    )


def _only_names(dow: str) -> bool:
    # day names such as "wed" contain W; only the numeric and `?` forms reach here otherwise
    return dow.replace(",", "").replace("-", "").isalpha() and "#" not in dow


def next_run(cron: str, after: dt.datetime) -> dt.datetime | None:
    """The first time the schedule fires after `after`, or None if it never fires again."""
    fire = parse_cron(cron).get_next_fire_time(None, after + dt.timedelta(seconds=1))
    return fire.astimezone(dt.UTC) if fire is not None else None


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    """A subscribed (not cancelled) subscription as fan-out needs it."""

    code: str
    sender_id: str
    transaction_id: str
    notify_url: str
    encrypt: bool
    frequency: str | None
    notify_record_type: str
    locale: str | None
    rule: SubscriptionRule
    filter_type: QueryType | None = None
    """As subscribed (the fan-out re-checks it against the sender's current policy)."""


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class SubscriptionStore:
    """Reads and writes the `subscription` table; caches each code's parsed filter."""

    def __init__(self) -> None:
        self._rules: dict[str, Any] = {}

    def _active(self, row: Any) -> ActiveSubscription:
        info = _INFO_DECODER.decode(row.info_json)
        where = self._rules.get(row.code)
        if where is None and row.code not in self._rules:
            where = translate_filter(info.filter_type, info.filter)
            self._rules[row.code] = where
        rule = SubscriptionRule(
            code=row.code,
            event_type=EventType(row.event_type),
            where=where,
            start_time=_aware(row.start_time) if row.frequency is None else None,
            expires_at=_aware(row.expires_at),
            active=row.status == SUBSCRIBED,
        )
        return ActiveSubscription(
            code=row.code,
            sender_id=row.sender_id,
            transaction_id=row.transaction_id,
            notify_url=row.notify_url,
            encrypt=bool(row.encrypt),
            frequency=row.frequency,
            notify_record_type=info.notify_record_type or record_type_wire(RecordType.PERSON),
            locale=info.locale,
            rule=rule,
            filter_type=info.filter_type,
        )

    def active(
        self, conn: sa.Connection, event: EventType, now: dt.datetime
    ) -> list[ActiveSubscription]:
        rows = conn.execute(
            sa.select(subscription_table)
            .where(S.status == SUBSCRIBED, S.event_type == event.value)
            .where(sa.or_(S.expires_at.is_(None), S.expires_at > now))
            .order_by(S.created_at, S.code)
        ).all()
        return [self._active(row) for row in rows]

    def due_batches(self, conn: sa.Connection, now: dt.datetime) -> list[ActiveSubscription]:
        """Due batched subscriptions, locked for the caller's transaction; one that another
        replica is flushing right now is skipped (it would be sent twice)."""
        rows = conn.execute(
            sa.select(subscription_table)
            .where(S.status == SUBSCRIBED, S.frequency.is_not(None), S.next_batch_at <= now)
            .order_by(S.next_batch_at, S.code)
            .with_for_update(skip_locked=True)
        ).all()
        return [self._active(row) for row in rows]

    def set_next_batch(self, conn: sa.Connection, code: str, when: dt.datetime | None) -> None:
        conn.execute(subscription_table.update().where(S.code == code).values(next_batch_at=when))

    def count_active(self, conn: sa.Connection, sender_id: str, now: dt.datetime) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(subscription_table)
                .where(S.sender_id == sender_id, S.status == SUBSCRIBED)
                .where(sa.or_(S.expires_at.is_(None), S.expires_at > now))
            ).scalar_one()
        )


@dataclass(frozen=True, slots=True)
class _Checked:
    """A subscribe item that passed the checks: what to store."""

    event: EventType
    where: Expr | None
    info: SubscriptionInfo
    frequency: str | None
    start_time: dt.datetime | None
    expires_at: dt.datetime
    next_batch_at: dt.datetime | None


class SubscriptionService:
    """The subscribe / unsubscribe use cases (synchronous; run them in a worker thread)."""

    def __init__(
        self,
        engine: sa.Engine,
        store: SubscriptionStore,
        settings: Settings,
        clock: Clock,
        ids: IdSource,
        sink: NotifySink,
        locations: LocationIndex | None = None,
        *,
        policies: PolicySource | None = None,
    ) -> None:
        """`policies` None turns disclosure policies off for subscriptions (as for search)."""
        self.engine = engine
        self.policies = policies
        self.sink = sink
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.locations = locations or farajaland()

    # --- the async endpoints ---------------------------------------------------------------

    def handle_subscribe(
        self,
        header: MsgHeader,
        request: SubscribeRequest,
        *,
        sender_id: str,
        callback_url: str,
        scheme: str | None = None,
        encrypt: bool = False,
    ) -> str:
        """Store subscriptions and queue on-subscribe in one transaction; the correlation id."""
        correlation_id = self.ids.new_id()
        with begin_write(self.engine, urgent=True) as conn:
            response = self.subscribe(
                conn,
                sender_id=sender_id,
                notify_url=callback_url,
                encrypt=encrypt,
                request=request,
                correlation_id=correlation_id,
            )
            job = self._callback("on-subscribe", header, sender_id, callback_url, response, scheme)
            self.sink.enqueue_notify(conn, [job], self.clock.now())
            record_transaction(
                conn,
                correlation_id=correlation_id,
                header=header,
                transaction_id=request.transaction_id,
                txn_type=TxnType.SUBSCRIBE.value,
                reference_ids=[item.reference_id for item in request.subscribe_request],
                callback_url=callback_url,
                response=encode(response),
                now=self.clock.now(),
            )
        return correlation_id

    def handle_unsubscribe(
        self,
        header: MsgHeader,
        request: UnSubscribeRequest,
        *,
        sender_id: str,
        callback_url: str | None,
        scheme: str | None = None,
    ) -> tuple[str, bool]:
        """Cancel and queue on-unsubscribe in one transaction: (correlation id, callback queued).

        Without a callback URL the outcome is answered at once: a rejection raises
        `RequestError` (`err.request.bad`, the reason code in the message), success returns
        False (the endpoint answers NACK: no callback follows).
        """
        correlation_id = self.ids.new_id()
        with begin_write(self.engine, urgent=True) as conn:
            response = self.unsubscribe(
                conn, sender_id=sender_id, request=request, correlation_id=correlation_id
            )
            if callback_url is not None:
                job = self._callback(
                    "on-unsubscribe", header, sender_id, callback_url, response, scheme
                )
                self.sink.enqueue_notify(conn, [job], self.clock.now())
            record_transaction(
                conn,
                correlation_id=correlation_id,
                header=header,
                transaction_id=request.transaction_id,
                txn_type=TxnType.UNSUBSCRIBE.value,
                reference_ids=[],
                callback_url=callback_url,
                response=encode(response),
                now=self.clock.now(),
            )
        if callback_url is None and response.status == RequestStatus.RJCT:
            raise RequestError(
                f"{response.status_reason_code}: {response.status_reason_message}",
                path="$.message.subscription_codes",
            )
        return correlation_id, callback_url is not None

    def _callback(
        self,
        action: str,
        request: MsgHeader,
        sender_id: str,
        url: str,
        message: Any,
        scheme: str | None,
    ) -> NotifyJob:
        # on-subscribe / on-unsubscribe use MsgHeader in the standard (not the callback header)
        header = MsgHeader(
            message_id=self.ids.new_id(),
            message_ts=isoformat_z(self.clock.now()),
            action=action,
            sender_id=self.settings.registry.registry_id,
            receiver_id=sender_id,
            total_count=request.total_count,
            meta={
                "correlation_id": message.correlation_id,
                "request_message_id": request.message_id,
            },
        )
        return NotifyJob(
            action,
            sender_id,
            url,
            # an encrypted request gets an encrypted answer: the outbox encrypts at send
            bool(request.is_msg_encrypted),
            header,
            message,
            correlation_id=message.correlation_id,
            scheme=scheme,
        )

    # --- subscribe ---------------------------------------------------------------------------

    def subscribe(
        self,
        conn: sa.Connection,
        *,
        sender_id: str,
        notify_url: str,
        encrypt: bool,
        request: SubscribeRequest,
        correlation_id: str,
    ) -> SubscribeResponse:
        """Check and store every item in the caller's write transaction; the on-subscribe body.

        Raises `ForbiddenError` (nothing stored) when policies are on and the sender has none.
        """
        now = self.clock.now()
        policy = None
        if self.policies is not None:
            policy = self.policies.current(conn, [sender_id]).get(sender_id)
            if policy is None:
                raise ForbiddenError("no disclosure policy allows this sender to subscribe")
        seen: set[str] = set()
        limit = self.settings.subscriptions.max_per_sender
        active = self.store.count_active(conn, sender_id, now)
        answers: list[SubscribeResponseItem] = []
        for index, item in enumerate(request.subscribe_request):
            ts = isoformat_z(now)
            locale = wire_locale(item.locale)
            try:
                if item.reference_id in seen:
                    raise ItemRejection(
                        SubscribeStatusReasonCode.REFERENCE_ID_DUPLICATE,
                        "reference_id repeats an earlier item of this message",
                        path=f"subscribe_request[{index}].reference_id",
                    )
                seen.add(item.reference_id)
                checked = self._check(item, now)
                if policy is not None:
                    policy.allows_subscription(
                        reg_type=item.subscribe_criteria.reg_type,
                        event_types=(checked.event,),
                        filter_type=item.subscribe_criteria.filter_type,
                        filter_expr=checked.where,
                    )
                if active >= limit:
                    raise ItemRejection(
                        NOTIFY_DETAILS,
                        f"this sender already holds the maximum of {limit} subscriptions",
                    )
                code = f"sub-{self.ids.new_id()}"
                info = msgspec.structs.replace(checked.info, code=code, timestamp=ts)
                conn.execute(
                    subscription_table.insert(),
                    {
                        "code": code,
                        "sender_id": sender_id,
                        "transaction_id": request.transaction_id,
                        "reference_id": item.reference_id,
                        "status": SUBSCRIBED,
                        "event_type": checked.event.value,
                        "notify_url": notify_url,
                        "encrypt": encrypt,
                        "frequency": checked.frequency,
                        "start_time": checked.start_time,
                        "expires_at": checked.expires_at,
                        "info_json": _INFO.encode(info),
                        "created_at": now,
                        "next_batch_at": checked.next_batch_at,
                    },
                )
                active += 1
                answers.append(
                    SubscribeResponseItem(
                        reference_id=item.reference_id,
                        timestamp=ts,
                        status=RequestStatus.SUCC,
                        subscriptions=[info],
                        locale=locale,
                    )
                )
            except ItemRejection as exc:
                answers.append(
                    SubscribeResponseItem(
                        reference_id=item.reference_id,
                        timestamp=ts,
                        status=RequestStatus.RJCT,
                        status_reason_code=SubscribeStatusReasonCode(exc.code),
                        status_reason_message=_reason(exc, index),
                        locale=locale,
                    )
                )
        return SubscribeResponse(
            transaction_id=request.transaction_id,
            correlation_id=correlation_id,
            subscribe_response=answers,
        )

    def _check(self, item: SubscribeRequestItem, now: dt.datetime) -> _Checked:
        criteria = item.subscribe_criteria
        reg_type = criteria.reg_type
        if reg_type is not None and parse_registry_type(reg_type) is not RegistryType.CIVIL:
            raise ItemRejection(NOTIFY_TYPES, "reg_type must be Civil", path="reg_type")
        event = parse_event_type(criteria.reg_event_type)
        if event not in SUPPORTED_EVENTS:
            raise ItemRejection(
                NOTIFY_TYPES,
                "reg_event_type must be LiveBirth, Death or Marriage",
                path="reg_event_type",
            )
        assert event is not None
        if parse_record_type(criteria.notify_record_type) is not RecordType.PERSON:
            raise ItemRejection(
                NOTIFY_TYPES, "notify_record_type must be Person", path="notify_record_type"
            )
        try:
            where = translate_filter(criteria.filter_type, criteria.filter)
        except ItemRejection as exc:
            raise ItemRejection(NOTIFY_DETAILS, f"filter: {exc.message}", path="filter") from None
        for location_id in place_ids(where):
            if self.locations.get(location_id) is None:
                raise ItemRejection(
                    NOTIFY_DETAILS, "filter names an unknown location", path="filter"
                )
        frequency: str | None = None
        start: dt.datetime | None = None
        next_batch: dt.datetime | None = None
        lifetime = dt.timedelta(days=self.settings.subscriptions.max_lifetime_days)
        expires = now + lifetime
        if criteria.frequency is not None:
            start = _instant(criteria.frequency.start_time)
            end = _instant(criteria.frequency.end_time)
            if end <= start:
                raise ItemRejection(
                    NOTIFY_DETAILS, "frequency.end_time is not after start_time", path="frequency"
                )
            if end <= now:
                raise ItemRejection(
                    NOTIFY_DETAILS, "frequency.end_time is in the past", path="frequency.end_time"
                )
            frequency = criteria.frequency.frequency.strip()
            try:
                next_batch = next_run(frequency, max(start, now))
            except ValueError as exc:
                raise ItemRejection(
                    NOTIFY_DETAILS, f"frequency: {exc}", path="frequency.frequency"
                ) from None
            expires = min(end, now + lifetime)
        info = SubscriptionInfo(
            code="-",
            status=SubscriptionStatus.SUBSCRIBE,
            timestamp=isoformat_z(now),
            reg_type=registry_type_wire(RegistryType.CIVIL),
            reg_event_type=event_type_wire(event),
            frequency=criteria.frequency,
            filter_type=criteria.filter_type,
            filter=criteria.filter,
            notify_record_type=record_type_wire(RecordType.PERSON),
            locale=wire_locale(item.locale),
        )
        return _Checked(event, where, info, frequency, start, expires, next_batch)

    # --- unsubscribe -------------------------------------------------------------------------

    def unsubscribe(
        self,
        conn: sa.Connection,
        *,
        sender_id: str,
        request: UnSubscribeRequest,
        correlation_id: str,
    ) -> UnSubscribeResponse:
        """Cancel the sender's own codes; unknown or foreign codes reject the whole request."""
        now = self.clock.now()
        codes = list(dict.fromkeys(request.subscription_codes))
        rows: dict[str, Any] = {
            row.code: row
            for row in conn.execute(
                sa.select(S.code, S.status).where(S.code.in_(codes), S.sender_id == sender_id)
            ).all()
        }
        unknown = [c for c in codes if c not in rows]
        already = [c for c in codes if c in rows and rows[c].status != SUBSCRIBED]

        def answer(
            status: RequestStatus, code: UnsubscribeStatusReasonCode | None, text: str | None
        ) -> UnSubscribeResponse:
            return UnSubscribeResponse(
                transaction_id=request.transaction_id,
                correlation_id=correlation_id,
                timestamp=isoformat_z(now),
                status=status,
                status_reason_code=code,
                status_reason_message=text,
                subscription_status=[
                    SubscriptionStatusItem(
                        code=c,
                        status=SubscriptionStatus(rows[c].status if c in rows else UNSUBSCRIBED),
                    )
                    for c in codes
                    if c in rows
                ]
                or None,
            )

        if unknown:
            return answer(
                RequestStatus.RJCT,
                UnsubscribeStatusReasonCode.SUBSCRIPTION_CODE_INVALID,
                f"{len(unknown)} subscription code(s) are not subscriptions of this sender",
            )
        if already:
            return answer(
                RequestStatus.RJCT,
                UnsubscribeStatusReasonCode.EVENT_ALREADY_UNSUBSCRIBED,
                f"{len(already)} subscription code(s) are already unsubscribed",
            )
        conn.execute(
            subscription_table.update()
            .where(S.code.in_(codes), S.sender_id == sender_id)
            .values(status=UNSUBSCRIBED, unsubscribed_at=now, next_batch_at=None)
        )
        rows = {c: _Row(c, UNSUBSCRIBED) for c in codes}
        return answer(RequestStatus.SUCC, None, None)

    # --- status ------------------------------------------------------------------------------

    def list_for(
        self, conn: sa.Connection, sender_id: str, codes: Sequence[str] | None = None
    ) -> list[SubscriptionInfo]:
        """The sender's subscriptions (all, or these codes), with their current status."""
        query = sa.select(S.info_json, S.status).where(S.sender_id == sender_id)
        if codes is not None:
            query = query.where(S.code.in_(list(codes)))
        found = []
        for data, status in conn.execute(query.order_by(S.created_at, S.code)).all():
            info = _INFO_DECODER.decode(data)
            found.append(msgspec.structs.replace(info, status=SubscriptionStatus(status)))
        return found


@dataclass(frozen=True, slots=True)
class _Row:
    code: str
    status: str


def _reason(exc: ItemRejection, index: int) -> str:
    where = f" at subscribe_request[{index}].subscribe_criteria.{exc.path}" if exc.path else ""
    if exc.path and exc.path.startswith("subscribe_request"):
        where = f" at {exc.path}"
    return f"{exc.message}{where}"[:999]


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00")).astimezone(
        dt.UTC
    )
