"""Search use cases: validate an envelope's header, run each search item, build the response."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec

from dci_bridge.clock import Clock, isoformat_z
from dci_bridge.errors import DciError, ForbiddenError, ItemRejection, RequestError, VersionError
from dci_bridge.protocol.codes import (
    VERSION,
    HeaderStatusReasonCode,
    RecordType,
    RegistryType,
    RequestStatus,
    SearchStatusReasonCode,
    record_type_wire,
    registry_type_wire,
)
from dci_bridge.protocol.header import MsgCallbackHeader, MsgHeader
from dci_bridge.protocol.primitives import wire_locale
from dci_bridge.protocol.search import (
    Pagination,
    SearchRequest,
    SearchRequestItem,
    SearchResponse,
    SearchResponseData,
    SearchResponseItem,
)
from dci_bridge.records.source import RecordSource
from dci_bridge.records.translate import translate_criteria
from dci_bridge.registry.ids import IdSource
from dci_bridge.registry.policy import CompiledPolicy, Disclosure, record_id
from dci_bridge.registry.policy_store import PolicySource
from dci_bridge.registry.ratelimit import RateLimiter
from dci_bridge.settings import Settings

_SUCC = RequestStatus.SUCC
_CIVIL_WIRE = registry_type_wire(RegistryType.CIVIL)
_PERSON_WIRE = record_type_wire(RecordType.PERSON)
"""Computed once: in Python 3.11 each `Enum.X` read (and `.value`) goes through a Python-level
hook, and these are read for every answered item."""


class SearchOutcome(msgspec.Struct, frozen=True):
    """What a search produced: the response and the callback header to send it with."""

    header: MsgCallbackHeader
    response: SearchResponse
    sender_id: str = ""
    policy_revision: int | None = None
    """Revision of the disclosure policy applied (None when policies are off)."""
    disclosures: tuple[Disclosure, ...] = ()
    """Per item, what was asked and disclosed: for the audit trail (no personal data)."""


def check_header(header: MsgHeader, *, action: str, items: int, settings: Settings) -> None:
    """Envelope-level rules the schema cannot express; raises a `DciError` with a reason."""
    if header.version != VERSION:
        raise VersionError("only version 1.0.0 is supported", path="$.header.version")
    if header.action != action:
        raise RequestError(
            f"action must be {action!r} on this endpoint",
            path="$.header.action",
            reason=HeaderStatusReasonCode.ACTION_INVALID,
        )
    receiver = header.receiver_id
    if receiver and receiver != settings.registry.registry_id:
        raise RequestError(
            "receiver_id is not this registry",
            path="$.header.receiver_id",
            code="err.receiver_id.invalid",
        )
    if items == 0:
        raise RequestError(
            "the message holds no request items",
            path="$.message",
            reason=HeaderStatusReasonCode.TOTAL_COUNT_INVALID,
        )
    if items > settings.search.max_batch_items:
        raise RequestError(
            f"at most {settings.search.max_batch_items} request items per message",
            path="$.message",
            reason=HeaderStatusReasonCode.TOTAL_COUNT_LIMIT_EXCEEDED,
        )
    if header.total_count != items:
        raise RequestError(
            "total_count does not match the number of request items",
            path="$.header.total_count",
            reason=HeaderStatusReasonCode.TOTAL_COUNT_INVALID,
        )


class SearchService:
    """Answers DCI search messages from one record source, within each sender's policy.

    `policies` None turns disclosure policies off (every sender learns everything); the app
    always passes a source unless the operator disabled them (`DCI_BRIDGE_POLICY__ENFORCE`).
    With policies on, a sender without one is refused with `err.request.forbidden`.
    """

    def __init__(
        self,
        source: RecordSource,
        settings: Settings,
        clock: Clock,
        ids: IdSource,
        *,
        policies: PolicySource | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.policies = policies
        self.limiter = RateLimiter(clock)

    async def admit(
        self, sender_id: str, items: int, *, charge: bool = True
    ) -> CompiledPolicy | None:
        """The sender's policy, after spending `items` requests of its rate (unless `charge`
        is false: an async search is charged when it is accepted, not again when it runs);
        raises `ForbiddenError` without a policy and `TooManyRequestsError` over its rate."""
        if self.policies is None:
            return None
        policy = await self.policies.lookup(sender_id)
        if policy is None:
            raise ForbiddenError("no disclosure policy allows this sender to search")
        if charge:
            self.limiter.take(
                sender_id,
                items,
                policy.requests_per_minute,
                self.settings.policy.rate_processes,
            )
        return policy

    async def search(
        self,
        header: MsgHeader,
        request: SearchRequest,
        *,
        sender_id: str | None = None,
        charge: bool = True,
    ) -> SearchOutcome:
        """Run every item of a search message (header already checked) and answer them all,
        within the sender's disclosure policy.

        `sender_id` is the authenticated sender (default: the header's `sender_id`); `charge`
        false does not count the items against the sender's rate (see `admit`)."""
        sender = sender_id or header.sender_id
        items = request.search_request
        policy = await self.admit(sender, len(items), charge=charge)
        now = self.clock.now()
        stamp = isoformat_z(now)
        seen: set[str] = set()
        duplicates: set[int] = set()
        for index, item in enumerate(items):
            if item.reference_id in seen:
                duplicates.add(index)
            seen.add(item.reference_id)
        if len(items) == 1:
            answers = [await self._item(items[0], 0 in duplicates, policy, now, stamp)]
        else:
            answers = list(
                await asyncio.gather(
                    *(
                        self._item(item, i in duplicates, policy, now, stamp)
                        for i, item in enumerate(items)
                    )
                )
            )
        results = [answer for answer, _ in answers]
        response = SearchResponse(
            transaction_id=request.transaction_id,
            correlation_id=self.ids.new_id(),
            search_response=results,
        )
        callback = MsgCallbackHeader(
            message_id=self.ids.new_id(),
            message_ts=stamp,
            action="on-search",
            status=_SUCC,
            total_count=len(items),
            completed_count=len(results),
            sender_id=self.settings.registry.registry_id,
            receiver_id=header.sender_id,
        )
        return SearchOutcome(
            callback,
            response,
            sender_id=sender,
            policy_revision=policy.revision if policy is not None else None,
            disclosures=tuple(disclosure for _, disclosure in answers),
        )

    async def _item(
        self,
        item: SearchRequestItem,
        duplicate: bool,
        policy: CompiledPolicy | None,
        now: dt.datetime,
        stamp: str,
    ) -> tuple[SearchResponseItem, Disclosure]:
        criteria = item.search_criteria
        disclosure = Disclosure(reference_id=item.reference_id, query_type=criteria.query_type)
        default_size = self.settings.search.default_page_size
        max_size = self.settings.search.max_page_size
        try:
            if duplicate:
                raise ItemRejection(
                    SearchStatusReasonCode.REFERENCE_ID_DUPLICATE,
                    "reference_id repeats an earlier item of this message",
                    path="reference_id",
                )
            if policy is not None:
                disclosure.consent = policy.check_consent(criteria.consent, criteria.authorize, now)
                policy.check_registry_type(criteria.reg_type)
                policy.check_query_type(criteria.query_type)
                default_size, max_size = policy.page_sizes(default_size, max_size)
            query = translate_criteria(
                criteria,
                item_pagination=item.pagination,
                default_page_size=default_size,
                max_page_size=max_size,
            )
            if policy is not None:
                query = policy.restrict(query)
            page = await self.source.search(query)
        except ItemRejection as rejection:
            disclosure.reason_code = rejection.code
            answer = SearchResponseItem(
                reference_id=item.reference_id,
                timestamp=stamp,
                status=RequestStatus.RJCT,
                status_reason_code=SearchStatusReasonCode(rejection.code),
                status_reason_message=_describe(rejection),
                locale=wire_locale(item.locale),
            )
            return answer, disclosure
        except DciError:
            raise
        if page.total_count > self.settings.search.max_total_count:
            disclosure.reason_code = SearchStatusReasonCode.TOO_MANY_RECORDS_FOUND.value
            answer = SearchResponseItem(
                reference_id=item.reference_id,
                timestamp=stamp,
                status=RequestStatus.RJCT,
                status_reason_code=SearchStatusReasonCode.TOO_MANY_RECORDS_FOUND,
                status_reason_message=(
                    f"more than {self.settings.search.max_total_count} records match;"
                    " narrow the query"
                ),
                locale=wire_locale(item.locale),
            )
            return answer, disclosure
        records = list(page.records)
        disclosure.record_ids = tuple(
            found for found in (record_id(bytes(r)) for r in records) if found is not None
        )
        disclosure.total_count = page.total_count
        if policy is not None:
            records = policy.minimise_all(records, now.date())
        answer = SearchResponseItem(
            reference_id=item.reference_id,
            timestamp=stamp,
            status=_SUCC,
            data=SearchResponseData(
                reg_type=_CIVIL_WIRE,
                reg_record_type=_PERSON_WIRE,
                reg_records=records,
            ),
            pagination=Pagination(
                page_size=query.page.size,
                page_number=query.page.number,
                total_count=page.total_count,
            ),
            locale=wire_locale(item.locale),
        )
        return answer, disclosure


def _describe(rejection: ItemRejection) -> str:
    text = f"{rejection.message} at {rejection.path}" if rejection.path else rejection.message
    return text[:999]
