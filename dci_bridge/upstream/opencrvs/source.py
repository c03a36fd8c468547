"""`OpenCrvsSource`: DCI searches answered live from OpenCRVS (implements `RecordSource`).

Nothing is stored: each search becomes OpenCRVS searches (`plan.py`), then record fetches
with bounded concurrency (`upstream.concurrency` per search), then persons built with the
embedded store's own code (`persons.py`, `records.person.build_person`).
- Identifier searches (`LookupPlan`): every registered record naming the identifier (at
  most `max_linked_records`, else `rjct.search.too_many_records_found`), then the records
  of the found persons' other identifiers (national id, BRN), so a UIN search sees the
  person's birth, marriage and death; filters, sort and page in memory.
- Attribute searches (`EventPlan`): OpenCRVS counts and pages (count = page size, skip =
  offset): exactly the page's records are fetched (OpenCRVS audits every fetch).
The whole search has a deadline of `3 x timeout_s`; failures are `UpstreamError` (503) or
`UpstreamTimeoutError` (504), never a hang. One shared HTTP client (keep-alive, on the event
loop) per source (`http.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from dci_bridge.errors import ItemRejection, UpstreamError, UpstreamTimeoutError
from dci_bridge.protocol.codes import (
    IdentifierType,
    SearchStatusReasonCode,
    canonical_identifier_type,
)
from dci_bridge.records.locations import LocationIndex, farajaland
from dci_bridge.records.mapped import MappedRecord
from dci_bridge.records.person import PersonView
from dci_bridge.records.query import IdentifierLookup, Page, RecordQuery
from dci_bridge.records.source import RecordPage
from dci_bridge.records.sql_query import compile_where, order_by
from dci_bridge.settings import UpstreamSettings
from dci_bridge.upstream.opencrvs.auth import TokenProvider
from dci_bridge.upstream.opencrvs.breaker import CircuitBreaker
from dci_bridge.upstream.opencrvs.evaluate import select
from dci_bridge.upstream.opencrvs.http import TransportError, UpstreamHttp
from dci_bridge.upstream.opencrvs.persons import group_persons
from dci_bridge.upstream.opencrvs.plan import (
    REGISTERED,
    EventPlan,
    LookupPlan,
    plan_query,
    seed_params,
)
from dci_bridge.upstream.opencrvs.transport import Upstream
from dci_bridge.upstream.opencrvs.v1 import V1Driver

T = TypeVar("T")

LINK_ROUNDS = 3
"""Rounds of following national ids and BRNs to a person's other records."""
_LINKING = frozenset({IdentifierType.UIN, IdentifierType.BRN})
"""The identifier types followed to a person's other records (a set built once)."""


class Driver(Protocol):
    """One OpenCRVS API generation: search record ids, fetch one record."""

    async def search(
        self,
        params: Mapping[str, Any],
        *,
        count: int,
        skip: int,
        sort: Sequence[Mapping[str, str]] = (),
    ) -> tuple[int, list[str]]: ...

    async def fetch(self, record_id: str) -> MappedRecord | None: ...


def _too_many(limit: int) -> ItemRejection:
    return ItemRejection(
        SearchStatusReasonCode.TOO_MANY_RECORDS_FOUND,
        f"the identifiers name more than {limit} OpenCRVS records",
    )


class OpenCrvsSource:
    """A live OpenCRVS as a record source."""

    def __init__(
        self,
        settings: UpstreamSettings,
        *,
        http: UpstreamHttp | None = None,
        locations: LocationIndex | None = None,
        driver: Driver | None = None,
    ) -> None:
        self.settings = settings
        self._own_http = http is None
        self.http = http or UpstreamHttp(
            max_connections=settings.max_connections, timeout_s=settings.timeout_s
        )
        self.locations = locations or farajaland()
        self.tokens = TokenProvider(
            self.http,
            auth_url=settings.auth_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            legacy=settings.legacy_auth,
            margin_s=settings.token_refresh_margin_s,
            timeout_s=settings.timeout_s,
        )
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
        self.upstream = Upstream(self.http, self.tokens, self.breaker, timeout_s=settings.timeout_s)
        self.driver: Driver = driver or self._driver()
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._deadline_s = settings.timeout_s * 3

    def _driver(self) -> Driver:
        if self.settings.generation == "v2":
            from dci_bridge.upstream.opencrvs.v2 import V2Driver

            self.upstream.graphql = False
            return V2Driver(self.upstream, self.settings, self.locations)
        return V1Driver(self.upstream, self.settings.gateway_url, self.locations)

    # --- RecordSource ----------------------------------------------------------------

    async def search(self, query: RecordQuery) -> RecordPage:
        plan = plan_query(query, self.locations, max_seeds=self.settings.max_linked_records)
        if isinstance(plan, LookupPlan) and (
            query.sort or not isinstance(query.where, IdentifierLookup)
        ):
            compile_where(query)  # the store's value checks: the same rejections
            order_by(query)
        try:
            async with asyncio.timeout(self._deadline_s):
                if isinstance(plan, LookupPlan):
                    return await self._lookup(plan, query)
                return await self._events(plan, query.page)
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"OpenCRVS did not answer the search within {self._deadline_s:g} s"
            ) from None

    async def get(self, id_type: IdentifierType, value: str) -> msgspec.Raw | None:
        page = await self.search(
            RecordQuery(where=IdentifierLookup(id_type, (value,)), page=Page(1, 1))
        )
        return page.records[0] if page.records else None

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def check(self) -> None:
        """Readiness: we hold (or can obtain) a system token and the breaker is not open."""
        if self.breaker.state == "open":
            raise UpstreamError("OpenCRVS failed repeatedly (circuit breaker open)")
        try:
            await asyncio.wait_for(self.tokens.get(), self.settings.timeout_s)
        except (TransportError, TimeoutError):
            raise UpstreamError("OpenCRVS auth is unreachable") from None

    # --- identifier searches -------------------------------------------------------------

    async def _lookup(self, plan: LookupPlan, query: RecordQuery) -> RecordPage:
        limit = self.settings.max_linked_records
        records: dict[str, MappedRecord] = {}
        explored: set[tuple[IdentifierType, str]] = set()
        wanted = list(plan.seeds)
        holding = {(canonical_identifier_type(k), v) for k, v in plan.seeds}
        views: list[PersonView] = []
        for _ in range(LINK_ROUNDS):
            searches = [s for s in dict.fromkeys(wanted) if s not in explored]
            if not searches:
                break
            explored.update(searches)
            found = await _all([self._ids(kind, value) for kind, value in searches])
            new_ids = sorted({i for ids in found for i in ids} - set(records))
            if len(records) + len(new_ids) > limit:
                raise _too_many(limit)
            if not new_ids and views:
                break
            for record in await self._fetch_all(new_ids):
                records[record.record_id] = record
            views = group_persons(records.values(), holding)
            wanted = list(_linking_identifiers(views))
        page, total = select(views, query)
        return RecordPage([msgspec.Raw(v.dci_json) for v in page], total)

    async def _ids(self, kind: IdentifierType, value: str) -> list[str]:
        limit = self.settings.max_linked_records
        total, ids = await self.driver.search(seed_params(kind, value), count=limit, skip=0)
        if total > limit:
            raise _too_many(limit)
        return ids

    async def _fetch_all(self, record_ids: Sequence[str]) -> list[MappedRecord]:
        async def one(record_id: str) -> MappedRecord | None:
            async with self._limit:
                return await self.driver.fetch(record_id)

        fetched = await _all([one(i) for i in record_ids])
        return [r for r in fetched if r is not None and r.is_registered]

    # --- attribute searches --------------------------------------------------------------

    async def _events(self, plan: EventPlan, page: Page) -> RecordPage:
        if plan.impossible:
            return RecordPage([], 0)
        total, ids = await self.driver.search(
            plan.params, count=page.size, skip=page.offset, sort=plan.sort
        )
        records = {r.record_id: r for r in await self._fetch_all(ids)}
        answers: list[msgspec.Raw] = []
        for record_id in ids:  # OpenCRVS's order
            record = records.get(record_id)
            if record is None or not record.subjects:
                continue
            view = group_persons([record])
            mark = (IdentifierType.OPENCRVS_RECORD_ID, record.record_id)
            chosen = next((v for v in view if mark in v.identifiers), view[0])
            answers.append(msgspec.Raw(chosen.dci_json))
        return RecordPage(answers, total)


async def _all(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """`asyncio.gather` of `calls`, but one call is awaited in place (no task to schedule:
    a look-up usually makes one search, then one fetch)."""
    if len(calls) == 1:
        return [await calls[0]]
    return list(await asyncio.gather(*calls))


def _linking_identifiers(views: Sequence[PersonView]) -> Iterable[tuple[IdentifierType, str]]:
    """National ids and BRNs of the found persons (to find their other records)."""
    for view in views:
        for kind, value in view.identifiers:
            if kind in _LINKING:
                yield kind, value


__all__ = ["REGISTERED", "OpenCrvsSource"]
