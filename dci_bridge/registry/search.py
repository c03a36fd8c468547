"""Search use cases: validate an envelope's header, run each search item, build the response."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dci_bridge.clock import Clock, isoformat_z
from dci_bridge.errors import DciError, ItemRejection, RequestError, VersionError
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
from dci_bridge.settings import Settings


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """What a search produced: the response and the callback header to send it with."""

    header: MsgCallbackHeader
    response: SearchResponse


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
    """Answers DCI search messages from one record source."""

    def __init__(
        self, source: RecordSource, settings: Settings, clock: Clock, ids: IdSource
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.ids = ids

    async def search(self, header: MsgHeader, request: SearchRequest) -> SearchOutcome:
        """Run every item of a search message (header already checked) and answer them all."""
        items = request.search_request
        seen: set[str] = set()
        duplicates: set[int] = set()
        for index, item in enumerate(items):
            if item.reference_id in seen:
                duplicates.add(index)
            seen.add(item.reference_id)
        if len(items) == 1:
            results = [await self._item(items[0], duplicate=0 in duplicates)]
        else:
            results = list(
                await asyncio.gather(
                    *(self._item(item, duplicate=i in duplicates) for i, item in enumerate(items))
                )
            )
        response = SearchResponse(
            transaction_id=request.transaction_id,
            correlation_id=self.ids.new_id(),
            search_response=results,
        )
        callback = MsgCallbackHeader(
            message_id=self.ids.new_id(),
            message_ts=isoformat_z(self.clock.now()),
            action="on-search",
            status=RequestStatus.SUCC,
            total_count=len(items),
            completed_count=len(results),
            sender_id=self.settings.registry.registry_id,
            receiver_id=header.sender_id,
        )
        return SearchOutcome(callback, response)

    async def _item(self, item: SearchRequestItem, *, duplicate: bool) -> SearchResponseItem:
        now = isoformat_z(self.clock.now())
        try:
            if duplicate:
                raise ItemRejection(
                    SearchStatusReasonCode.REFERENCE_ID_DUPLICATE,
                    "reference_id repeats an earlier item of this message",
                    path="reference_id",
                )
            query = translate_criteria(
                item.search_criteria,
                item_pagination=item.pagination,
                default_page_size=self.settings.search.default_page_size,
                max_page_size=self.settings.search.max_page_size,
            )
            page = await self.source.search(query)
        except ItemRejection as rejection:
            return SearchResponseItem(
                reference_id=item.reference_id,
                timestamp=now,
                status=RequestStatus.RJCT,
                status_reason_code=SearchStatusReasonCode(rejection.code),
                status_reason_message=_describe(rejection),
                locale=wire_locale(item.locale),
            )
        except DciError:
            raise
        if page.total_count > self.settings.search.max_total_count:
            return SearchResponseItem(
                reference_id=item.reference_id,
                timestamp=now,
                status=RequestStatus.RJCT,
                status_reason_code=SearchStatusReasonCode.TOO_MANY_RECORDS_FOUND,
                status_reason_message=(
                    f"more than {self.settings.search.max_total_count} records match;"
                    " narrow the query"
                ),
                locale=wire_locale(item.locale),
            )
        return SearchResponseItem(
            reference_id=item.reference_id,
            timestamp=now,
            status=RequestStatus.SUCC,
            data=SearchResponseData(
                reg_type=registry_type_wire(RegistryType.CIVIL),
                reg_record_type=record_type_wire(RecordType.PERSON),
                reg_records=list(page.records),
            ),
            pagination=Pagination(
                page_size=query.page.size,
                page_number=query.page.number,
                total_count=page.total_count,
            ),
            locale=wire_locale(item.locale),
        )


def _describe(rejection: ItemRejection) -> str:
    text = f"{rejection.message} at {rejection.path}" if rejection.path else rejection.message
    return text[:999]
