"""`OpenCrvsSource` over a scripted driver: what it asks OpenCRVS and what it keeps.

- every search asks for registered records, and a record OpenCRVS returns anyway in
  another status (an upstream that ignores the filter) is dropped;
- a look-up whose identifiers name more records than `max_linked_records` is refused
  before a single record is fetched (every fetch is audited by OpenCRVS);
- an attribute search fetches exactly the records of the requested page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import pytest

from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import EventType, ExpOperator, IdentifierType
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.mapped import MappedRecord, RecordEvent
from dci_bridge.records.query import Attribute, Comparison, IdentifierLookup, Page, RecordQuery
from dci_bridge.records.seed import generate_bundles
from dci_bridge.settings import UpstreamSettings
from dci_bridge.upstream.opencrvs.plan import REGISTERED
from dci_bridge.upstream.opencrvs.source import OpenCrvsSource

pytestmark = pytest.mark.anyio

BIRTHS = [
    r for r in (map_bundle(b) for b in generate_bundles(200, 5)) if r.event is RecordEvent.BIRTH
]


class ScriptedDriver:
    """Answers searches with the given record ids; counts every search and fetch."""

    def __init__(self, records: Sequence[MappedRecord], total: int | None = None) -> None:
        self.records = {r.record_id: r for r in records}
        self.total = total
        self.searches: list[dict[str, Any]] = []
        self.fetched: list[str] = []

    async def search(
        self,
        params: Mapping[str, Any],
        *,
        count: int,
        skip: int,
        sort: Sequence[Mapping[str, str]] = (),
    ) -> tuple[int, list[str]]:
        self.searches.append({"params": dict(params), "count": count, "skip": skip})
        ids = list(self.records)
        total = self.total if self.total is not None else len(ids)
        return total, ids[skip : skip + count]

    async def fetch(self, record_id: str) -> MappedRecord | None:
        self.fetched.append(record_id)
        return self.records.get(record_id)


def _source(driver: ScriptedDriver, **settings: Any) -> OpenCrvsSource:
    upstream = UpstreamSettings(source="opencrvs", client_id="c", client_secret="s", **settings)
    return OpenCrvsSource(upstream, driver=driver)


async def test_records_in_other_statuses_are_dropped() -> None:
    record = BIRTHS[0]
    declared = msgspec.structs.replace(record, status="DECLARED")
    driver = ScriptedDriver([declared])
    assert record.registration_number is not None
    query = RecordQuery(
        where=IdentifierLookup(IdentifierType.BRN, (record.registration_number,)),
        page=Page(1, 10),
    )
    page = await _source(driver).search(query)
    assert (list(page.records), page.total_count) == ([], 0)
    assert driver.searches
    assert all(s["params"]["registrationStatuses"] == REGISTERED for s in driver.searches)

    births = RecordQuery(
        where=Comparison(Attribute.SURNAME, ExpOperator.EQ, "x"),
        event_types=frozenset({EventType.LIVE_BIRTH}),
        page=Page(1, 10),
    )
    page = await _source(driver).search(births)
    assert list(page.records) == []
    assert all(s["params"]["registrationStatuses"] == REGISTERED for s in driver.searches)


async def test_too_many_linked_records_are_refused_before_any_fetch() -> None:
    driver = ScriptedDriver(BIRTHS[:3], total=51)
    query = RecordQuery(where=IdentifierLookup(IdentifierType.UIN, ("1234567890",)))
    with pytest.raises(ItemRejection) as refused:
        await _source(driver, max_linked_records=50).search(query)
    assert refused.value.code == "rjct.search.too_many_records_found"
    assert driver.searches[0]["count"] == 50
    assert driver.fetched == []


async def test_an_attribute_search_fetches_the_page_only() -> None:
    driver = ScriptedDriver(BIRTHS[:40])
    query = RecordQuery(
        where=Comparison(Attribute.SURNAME, ExpOperator.EQ, "x"),
        event_types=frozenset({EventType.LIVE_BIRTH}),
        page=Page(3, 7),
    )
    page = await _source(driver).search(query)
    assert page.total_count == 40
    assert (driver.searches[0]["count"], driver.searches[0]["skip"]) == (7, 14)
    assert driver.fetched == list(driver.records)[14:21]
    assert len(page.records) == 7
