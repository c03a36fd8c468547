"""Async search and transaction status: accept at once, answer later by callback.

`POST /registry/search`: after the envelope checks, ONE write transaction stores the
transaction (`dci_transaction`, keyed by the correlation id the Ack announces) and its work;
the Ack goes back once it has committed, so a crash after the Ack loses nothing. When the
record source answers cheaply (the embedded store: `answer_inline`) and the answer fits in
one message, the search runs before that transaction and the work is the signed-at-send
`on-search` callback itself: the transaction is stored already answered (`succ`, for
`txn/status`). Otherwise (a remote source, a result of several pages, a source error) the
work is an outbox task `search` that the delivery worker runs here (`run_search`): it
searches, stores the response, and enqueues the `on-search` callbacks in the same transaction
that completes the task. Accepting transactions are group-committed with each other and with
the worker's ticks (`delivery.commits`).

Large results: an item asking for page 1 (or giving no pagination) is answered page after
page (of its `page_size`, up to `delivery.max_async_records` records), one `on-search` message per
page number: message k carries page k of every item that has one. Header `total_count` is
the number of request items, `completed_count` the items fully answered once this message
is received, `status` `pdng` while more messages follow and `succ` on the last.

`txn/status` (async and sync) reports a transaction of the asking sender found by
`transaction_id`, `correlation_id`, `reference_id_list` or (subscribe and unsubscribe)
`subscription_code_list`: the stored response message (items still running report `pdng`),
limited to the asked reference ids or subscription codes. The async form answers with a
`txn-on-status` callback, enqueued in the transaction that records the request.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import anyio.to_thread
import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock, isoformat_z
from dci_bridge.db.tables_delivery import DciTransaction
from dci_bridge.delivery import outbox
from dci_bridge.delivery.commits import GroupCommit
from dci_bridge.delivery.outbox import Job, NewJob
from dci_bridge.delivery.safety import CallbackRefused, check_callback_url, parse_prefixes
from dci_bridge.delivery.worker import TaskOutcome
from dci_bridge.errors import DciError, SenderUriError
from dci_bridge.ops import metrics
from dci_bridge.protocol.ack import Ack, AckMessage
from dci_bridge.protocol.codec import decode_message, encode
from dci_bridge.protocol.codes import AckStatus, RequestStatus, TxnAttributeType, TxnType
from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.protocol.search import (
    PaginationRequest,
    SearchRequest,
    SearchRequestItem,
    SearchResponse,
    SearchResponseItem,
)
from dci_bridge.protocol.txn import (
    TxnStatusRequest,
    TxnStatusResponse,
    TxnStatusResult,
)
from dci_bridge.registry.audit import AuditTrail
from dci_bridge.registry.ids import IdSource
from dci_bridge.registry.policy import Disclosure
from dci_bridge.registry.search import SearchOutcome, SearchService
from dci_bridge.settings import Settings

__all__ = ["SEARCH_TASK", "AsyncOperations", "CallbackTarget", "TxnLookup", "record_transaction"]

SEARCH_TASK: Final = "search"
"""Outbox kind of the task that runs an accepted async search."""
ON_SEARCH: Final = "on-search"
TXN_ON_STATUS: Final = "txn-on-status"

txn_table: sa.Table = DciTransaction.__table__  # type: ignore[attr-defined]
_INSERT_TXN: Final = txn_table.insert()
_HEADER_DECODER = msgspec.json.Decoder(MsgHeader)
_BARE_TXN_TYPE: Final = {
    TxnType.ON_SEARCH: TxnType.SEARCH,
    TxnType.ON_SUBSCRIBE: TxnType.SUBSCRIBE,
    TxnType.ON_UNSUBSCRIBE: TxnType.UNSUBSCRIBE,
}
_LOOKUP_WINDOW: Final = 1000
"""Most recent transactions of a sender searched for a reference_id_list."""


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    """Where and how a sender gets its callbacks: the checked URL and our signing scheme."""

    url: str
    scheme: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    """A search answered: its on-search callbacks, the response stored for `txn/status`,
    and what the audit trail records."""

    messages: list[NewJob]
    stored: bytes
    answered: list[SearchResponseItem]
    disclosures: list[Disclosure]
    policy_revision: int | None


@dataclass(frozen=True, slots=True)
class TxnLookup:
    """A stored transaction as `txn/status` sees it."""

    correlation_id: str
    transaction_id: str
    txn_type: str
    status: str
    reference_ids: list[str]
    response: bytes | None
    created_at: dt.datetime


def callback_target(
    settings: Settings,
    header: MsgHeader,
    *,
    prefixes: Sequence[str] = (),
    scheme: str | None = None,
) -> CallbackTarget:
    """The request's `sender_uri` (or the configured default), checked against the sender's
    registered prefixes and the globally configured ones; `SenderUriError` otherwise."""
    url = header.sender_uri or settings.delivery.default_callback_url
    if not url:
        raise SenderUriError(
            "sender_uri is required: no default callback is configured for this sender",
            path="$.header.sender_uri",
        )
    allowed = (*prefixes, *parse_prefixes(settings.delivery.callback_prefixes))
    try:
        checked = check_callback_url(url, allowed)
    except CallbackRefused as exc:
        raise SenderUriError(str(exc), path="$.header.sender_uri") from None
    return CallbackTarget(checked, scheme)


class AsyncOperations:
    """The async use cases and the worker task that completes an async search."""

    def __init__(
        self,
        engine: sa.Engine,
        search: SearchService,
        settings: Settings,
        clock: Clock,
        ids: IdSource,
        *,
        commits: GroupCommit | None = None,
        answer_inline: bool = False,
    ) -> None:
        self.engine = engine
        self.search = search
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.commits = commits or GroupCommit(engine)
        """Accepting transactions share commits (with each other and the worker's ticks)."""
        self.answer_inline = answer_inline
        """Search while accepting (a cheap, local record source; see the module doc)."""
        self.audit: AuditTrail | None = None
        """Set by the app: every completed async search is audited like a sync one."""

    # --- accept ------------------------------------------------------------------------

    async def accept_search(
        self, header: MsgHeader, request: SearchRequest, raw_message: bytes, target: CallbackTarget
    ) -> Ack:
        """Store the transaction and its work (the answer's callbacks, or the search task)
        in one transaction; the Ack once it has committed.

        The sender's disclosure policy is checked (and its rate charged) here, so a sender
        without one, or over its rate, gets the error at once instead of a callback."""
        await self.search.admit(header.sender_id, len(request.search_request))
        correlation_id = self.ids.new_id()
        now = self.clock.now()
        refs = [item.reference_id for item in request.search_request]
        answer = None
        if self.answer_inline:
            answer = await self._answer_at_once(header, request, correlation_id, target)

        def write(conn: sa.Connection) -> None:
            _insert_transaction(
                conn,
                correlation_id=correlation_id,
                header=header,
                transaction_id=request.transaction_id,
                txn_type=TxnType.SEARCH.value,
                status=(RequestStatus.PDNG if answer is None else RequestStatus.SUCC).value,
                reference_ids=refs,
                callback_url=target.url,
                response=None if answer is None else answer.stored,
                now=now,
            )
            if answer is not None:
                outbox.enqueue(conn, answer.messages, now=now)
                return
            task = NewJob(
                kind=SEARCH_TASK,
                header=encode(header),
                message=raw_message,
                sender_id=header.sender_id,
                message_id=header.message_id,
                correlation_id=correlation_id,
                scheme=target.scheme,
            )
            outbox.enqueue(conn, task, now=now)

        await self.commits.run(write, urgent=True)
        if answer is not None:
            self._audit(header, request, answer)
        return self._ack(correlation_id, now)

    async def _answer_at_once(
        self, header: MsgHeader, request: SearchRequest, correlation_id: str, target: CallbackTarget
    ) -> _Answer | None:
        """The whole answer when one message holds it; None leaves the search to the worker
        (more pages to fetch, or a source error it retries)."""
        try:
            outcome = await self.search.search(header, request, charge=False)
        except DciError:
            return None
        if self._further_pages(request, outcome):
            return None
        first = {item.reference_id: item for item in outcome.response.search_response}
        return self._answer(
            header,
            request,
            correlation_id,
            [first],
            target=target.url,
            scheme=target.scheme,
            disclosures=list(outcome.disclosures),
            policy_revision=outcome.policy_revision,
        )

    async def accept_txn_status(
        self, header: MsgHeader, request: TxnStatusRequest, target: CallbackTarget
    ) -> Ack:
        """Look the transaction up, record the request and enqueue the `txn-on-status`
        callback in one transaction; the Ack."""
        correlation_id = self.ids.new_id()
        now = self.clock.now()

        def write(conn: sa.Connection) -> None:
            callback_header, response = self._status(conn, header, request, correlation_id)
            message = encode(response) if response is not None else None
            if message is not None and header.is_msg_encrypted:
                # an encrypted request gets an encrypted answer: the worker encrypts at send
                callback_header = msgspec.structs.replace(callback_header, is_msg_encrypted=True)
            _insert_transaction(
                conn,
                correlation_id=correlation_id,
                header=header,
                transaction_id=request.transaction_id,
                txn_type="txn-status",
                status=RequestStatus.SUCC.value,
                reference_ids=[request.txnstatus_request.reference_id],
                callback_url=target.url,
                response=message,
                now=now,
            )
            outbox.enqueue(
                conn,
                NewJob(
                    kind=TXN_ON_STATUS,
                    header=encode(callback_header),
                    message=message,
                    target_url=target.url,
                    sender_id=header.sender_id,
                    message_id=callback_header.message_id,
                    correlation_id=correlation_id,
                    scheme=target.scheme,
                ),
                now=now,
            )

        await self.commits.run(write, urgent=True)
        return self._ack(correlation_id, now)

    async def txn_status(
        self, header: MsgHeader, request: TxnStatusRequest
    ) -> tuple[MsgCallbackHeader, TxnStatusResponse | None]:
        """The sync answer: callback header (`rjct` when nothing matched) and message."""

        def read() -> tuple[MsgCallbackHeader, TxnStatusResponse | None]:
            with self.engine.connect() as conn:
                return self._status(conn, header, request, self.ids.new_id())

        return await anyio.to_thread.run_sync(read)

    def _ack(self, correlation_id: str, now: dt.datetime) -> Ack:
        return Ack(
            message=AckMessage(
                ack_status=AckStatus.ACK,
                timestamp=isoformat_z(now),
                correlation_id=correlation_id,
            )
        )

    # --- txn status --------------------------------------------------------------------

    def _status(
        self,
        conn: sa.Connection,
        header: MsgHeader,
        request: TxnStatusRequest,
        correlation_id: str,
    ) -> tuple[MsgCallbackHeader, TxnStatusResponse | None]:
        query = request.txnstatus_request
        found = find_transaction(
            conn,
            sender_id=header.sender_id,
            txn_type=_BARE_TXN_TYPE.get(query.txn_type, query.txn_type).value,
            attribute_type=query.attribute_type,
            value=query.attribute_value,
        )
        now = isoformat_z(self.clock.now())
        status = RequestStatus.SUCC if found is not None else RequestStatus.RJCT
        callback = MsgCallbackHeader(
            message_id=self.ids.new_id(),
            message_ts=now,
            action=TXN_ON_STATUS,
            status=status,
            status_reason_message=None if found is not None else "no such transaction",
            total_count=1,
            completed_count=1,
            sender_id=self.settings.registry.registry_id,
            receiver_id=header.sender_id,
        )
        if found is None:
            return callback, None
        refs = query.attribute_value if isinstance(query.attribute_value, list) else None
        only = refs if query.attribute_type is TxnAttributeType.REFERENCE_ID_LIST else None
        codes = refs if query.attribute_type is TxnAttributeType.SUBSCRIPTION_CODE_LIST else None
        body = _reported_response(found, only, now, codes)
        response = TxnStatusResponse(
            transaction_id=request.transaction_id,
            correlation_id=correlation_id,
            txnstatus_response=TxnStatusResult(txn_type=TxnType(found.txn_type), txn_status=body),
        )
        return callback, response

    # --- the worker task ---------------------------------------------------------------

    async def run_search(self, job: Job) -> TaskOutcome:
        """Run an accepted async search: its on-search messages and the stored response."""
        header = _HEADER_DECODER.decode(job.header)
        decoded = decode_message("search", job.message or b"{}")
        assert isinstance(decoded, SearchRequest)
        assert job.correlation_id is not None
        target = await anyio.to_thread.run_sync(self._target_of, job.correlation_id)
        disclosures: list[Disclosure] = []
        pages, revision = await self._pages(header, decoded, disclosures)
        answer = self._answer(
            header,
            decoded,
            job.correlation_id,
            pages,
            target=target,
            scheme=job.scheme,
            disclosures=disclosures,
            policy_revision=revision,
        )
        self._audit(header, decoded, answer)
        correlation_id = job.correlation_id
        now = self.clock.now()

        def apply(conn: sa.Connection) -> None:
            conn.execute(
                txn_table.update()
                .where(txn_table.c.correlation_id == correlation_id)
                .values(
                    status=RequestStatus.SUCC.value, response_json=answer.stored, updated_at=now
                )
            )

        return TaskOutcome(follow_up=answer.messages if target else [], apply=apply)

    def _answer(
        self,
        header: MsgHeader,
        request: SearchRequest,
        correlation_id: str,
        pages: list[dict[str, SearchResponseItem]],
        *,
        target: str | None,
        scheme: str | None,
        disclosures: list[Disclosure],
        policy_revision: int | None,
    ) -> _Answer:
        """One on-search message per page (see the module doc) and the stored response."""
        answered = [answer for page in pages for answer in page.values()]
        for item in answered:
            data = item.data
            metrics.record_search_results(str(item.status), len(data.reg_records) if data else 0)
        total = len(request.search_request)
        last_page = {
            ref: max(n for n, items in enumerate(pages, 1) if ref in items)
            for ref in {item.reference_id for page in pages for item in page.values()}
        }
        messages: list[NewJob] = []
        stored = b""
        for number, items in enumerate(pages, start=1):
            response = SearchResponse(
                transaction_id=request.transaction_id,
                correlation_id=correlation_id,
                search_response=list(items.values()),
            )
            done = sum(1 for last in last_page.values() if last <= number)
            callback = MsgCallbackHeader(
                message_id=self.ids.new_id(),
                message_ts=isoformat_z(self.clock.now()),
                action=ON_SEARCH,
                status=RequestStatus.SUCC if number == len(pages) else RequestStatus.PDNG,
                total_count=total,
                completed_count=done,
                sender_id=self.settings.registry.registry_id,
                receiver_id=header.sender_id,
                # an encrypted request gets encrypted answers: the worker encrypts at send
                is_msg_encrypted=header.is_msg_encrypted,
            )
            message = encode(response)
            if number == 1:
                stored = message
            messages.append(
                NewJob(
                    kind=ON_SEARCH,
                    header=encode(callback),
                    message=message,
                    target_url=target,
                    sender_id=header.sender_id,
                    message_id=callback.message_id,
                    correlation_id=correlation_id,
                    scheme=scheme,
                )
            )
        return _Answer(messages, stored, answered, disclosures, policy_revision)

    def _audit(self, header: MsgHeader, request: SearchRequest, answer: _Answer) -> None:
        if self.audit is not None:
            self.audit.record_search(
                header,
                request,
                answer.answered,
                action="search",
                mode="async",
                disclosures=answer.disclosures,
                policy_revision=answer.policy_revision,
            )

    def _target_of(self, correlation_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(txn_table.c.callback_url).where(
                    txn_table.c.correlation_id == correlation_id
                )
            ).first()
        return None if row is None else row[0]

    async def _pages(
        self, header: MsgHeader, request: SearchRequest, disclosures: list[Disclosure]
    ) -> tuple[list[dict[str, SearchResponseItem]], int | None]:
        """Page k of every item that has one, by reference_id, for k = 1, 2, ...; what each
        page disclosed is appended to `disclosures` (for the audit trail). Also the revision
        of the sender's disclosure policy that applied."""
        # policy applied (fields, per-item checks) but the rate was charged at accept time
        outcome = await self.search.search(header, request, charge=False)
        disclosures.extend(outcome.disclosures)
        first = {item.reference_id: item for item in outcome.response.search_response}
        pages: list[dict[str, SearchResponseItem]] = [first]
        more = self._further_pages(request, outcome)
        for number in sorted(more):
            batch = SearchRequest(
                transaction_id=request.transaction_id, search_request=more[number]
            )
            paged = await self.search.search(header, batch, charge=False)
            disclosures.extend(paged.disclosures)
            pages.append({item.reference_id: item for item in paged.response.search_response})
        return pages, outcome.policy_revision

    def _further_pages(
        self, request: SearchRequest, outcome: SearchOutcome
    ) -> dict[int, list[SearchRequestItem]]:
        """By page number (2, 3, ...), the items that still have that page to send."""
        more: dict[int, list[SearchRequestItem]] = {}
        cap = self.settings.delivery.max_async_records
        for asked, answered in zip(
            request.search_request, outcome.response.search_response, strict=True
        ):
            if answered.status is not RequestStatus.SUCC or answered.pagination is None:
                continue
            if _explicit_page(asked):
                continue
            size = answered.pagination.page_size
            total = min(answered.pagination.total_count, cap)
            count = -(-total // size) if size > 0 else 1
            for number in range(2, count + 1):
                more.setdefault(number, []).append(_with_page(asked, size, number))
        return more


def _explicit_page(item: SearchRequestItem) -> bool:
    """A page other than the first was asked for: only that page is sent."""
    pagination = item.search_criteria.pagination or item.pagination
    return pagination is not None and pagination.page_number != 1


def _with_page(item: SearchRequestItem, size: int, number: int) -> SearchRequestItem:
    criteria = msgspec.structs.replace(
        item.search_criteria, pagination=PaginationRequest(page_size=size, page_number=number)
    )
    return msgspec.structs.replace(item, search_criteria=criteria, pagination=None)


def _insert_transaction(
    conn: sa.Connection,
    *,
    correlation_id: str,
    header: MsgHeader,
    transaction_id: str,
    txn_type: str,
    status: str,
    reference_ids: list[str],
    callback_url: str | None,
    response: bytes | None,
    now: dt.datetime,
) -> None:
    conn.execute(  # parameters, not .values(): the statement is built and compiled once
        _INSERT_TXN,
        {
            "correlation_id": correlation_id,
            "sender_id": header.sender_id,
            "transaction_id": transaction_id,
            "message_id": header.message_id,
            "txn_type": txn_type,
            "status": status,
            "reference_ids": json.dumps(reference_ids),
            "callback_url": callback_url,
            "response_json": response,
            "created_at": now,
            "updated_at": now,
        },
    )


def record_transaction(
    conn: sa.Connection,
    *,
    correlation_id: str,
    header: MsgHeader,
    transaction_id: str,
    txn_type: str,
    reference_ids: list[str],
    callback_url: str | None,
    response: bytes,
    now: dt.datetime,
) -> None:
    """Store a finished transaction of another use case (subscribe, unsubscribe) so that
    txn status reports it like a search."""
    _insert_transaction(
        conn,
        correlation_id=correlation_id,
        header=header,
        transaction_id=transaction_id,
        txn_type=txn_type,
        status=RequestStatus.SUCC.value,
        reference_ids=reference_ids,
        callback_url=callback_url,
        response=response,
        now=now,
    )


def find_transaction(
    conn: sa.Connection,
    *,
    sender_id: str,
    txn_type: str,
    attribute_type: TxnAttributeType,
    value: str | list[str],
) -> TxnLookup | None:
    """The sender's newest transaction of `txn_type` matching the attribute, or None.
    Other senders' transactions are never found."""
    t = txn_table
    query = (
        sa.select(t)
        .where(t.c.sender_id == sender_id, t.c.txn_type == txn_type)
        .order_by(t.c.created_at.desc())
    )
    if attribute_type is TxnAttributeType.TRANSACTION_ID and isinstance(value, str):
        row = conn.execute(query.where(t.c.transaction_id == value).limit(1)).first()
    elif attribute_type is TxnAttributeType.CORRELATION_ID and isinstance(value, str):
        row = conn.execute(query.where(t.c.correlation_id == value).limit(1)).first()
    elif attribute_type is TxnAttributeType.REFERENCE_ID_LIST and isinstance(value, list):
        wanted = set(value)
        row = None
        for candidate in conn.execute(query.limit(_LOOKUP_WINDOW)):
            if wanted & set(json.loads(candidate._mapping["reference_ids"])):
                row = candidate
                break
    elif attribute_type is TxnAttributeType.SUBSCRIPTION_CODE_LIST and isinstance(value, list):
        wanted = set(value)
        row = None
        for candidate in conn.execute(query.limit(_LOOKUP_WINDOW)):
            stored = candidate._mapping["response_json"]
            if stored is not None and wanted & _subscription_codes(
                msgspec.json.decode(bytes(stored))
            ):
                row = candidate
                break
    else:
        return None
    if row is None:
        return None
    m = row._mapping
    created = m["created_at"]
    return TxnLookup(
        correlation_id=m["correlation_id"],
        transaction_id=m["transaction_id"],
        txn_type=m["txn_type"],
        status=m["status"],
        reference_ids=json.loads(m["reference_ids"]),
        response=None if m["response_json"] is None else bytes(m["response_json"]),
        created_at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),
    )


def _subscription_codes(body: Any) -> set[str]:
    """The subscription codes a stored subscribe or unsubscribe response names."""
    codes: set[str] = set()
    if not isinstance(body, dict):
        return codes
    for item in body.get("subscribe_response") or []:
        for info in (item.get("subscriptions") or []) if isinstance(item, dict) else []:
            if isinstance(info, dict) and isinstance(info.get("code"), str):
                codes.add(info["code"])
    for status in body.get("subscription_status") or []:
        if isinstance(status, dict) and isinstance(status.get("code"), str):
            codes.add(status["code"])
    return codes


def _only_codes(body: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    """The response limited to the items (and subscriptions) of these codes."""
    keep = set(codes)
    if isinstance(body.get("subscribe_response"), list):
        items = []
        for item in body["subscribe_response"]:
            infos = [i for i in item.get("subscriptions") or [] if i.get("code") in keep]
            if infos:
                items.append({**item, "subscriptions": infos})
        body["subscribe_response"] = items
    if isinstance(body.get("subscription_status"), list):
        body["subscription_status"] = [
            s for s in body["subscription_status"] if s.get("code") in keep
        ]
    return body


def _reported_response(
    found: TxnLookup, only: list[str] | None, now: str, codes: list[str] | None = None
) -> Any:
    """The stored response message (JSON value), or a pending one, limited to `only`
    (reference ids) or to `codes` (subscription codes)."""
    if found.response is not None:
        body: dict[str, Any] = msgspec.json.decode(found.response)
    else:
        body = {
            "transaction_id": found.transaction_id,
            "correlation_id": found.correlation_id,
            "search_response": [
                {"reference_id": ref, "timestamp": now, "status": RequestStatus.PDNG.value}
                for ref in found.reference_ids
            ],
        }
    if only is not None and isinstance(body.get("search_response"), list):
        keep = set(only)
        body["search_response"] = [
            item for item in body["search_response"] if item.get("reference_id") in keep
        ]
    if codes is not None:
        body = _only_codes(body, codes)
    return body
