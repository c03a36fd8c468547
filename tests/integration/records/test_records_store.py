"""The embedded store on SQLite and PostgreSQL: migrations, upserts, matching, searches."""

from __future__ import annotations

import json

import msgspec
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dci_bridge.db.engine import create_sync_engine, current_revision, head_revision, migrate
from dci_bridge.db.tables import all_metadata
from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codes import EventType, ExpOperator, IdentifierType, SortOrder
from dci_bridge.records.fhir_map import MappingError
from dci_bridge.records.indexer import person_table
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    IdentifierLookup,
    Not,
    Page,
    RecordQuery,
    SortKey,
)
from dci_bridge.records.seed import generate_bundles, known_persons, seed_store
from dci_bridge.records.store import EmbeddedFhirStore, StoreNotReadyError
from tests.integration.records.records_store_support import fixture_bundle

pytestmark = pytest.mark.anyio

CHILD_BRN = "2023B3VUXES"
MOTHER_NID = "2253499797"
DECEASED_NID = "8360781537"


def _decode(raw: msgspec.Raw) -> dict:
    return json.loads(bytes(raw))


def lookup(id_type: IdentifierType, *values: str, **kw) -> RecordQuery:
    return RecordQuery(where=IdentifierLookup(id_type, values), **kw)


async def test_open_refuses_an_unmigrated_database(database_url):
    with pytest.raises(StoreNotReadyError, match="migrations"):
        await EmbeddedFhirStore.open(database_url)


def test_migrations_match_the_tables_and_are_idempotent(database_url):
    assert current_revision(database_url) is None
    migrate(database_url)
    migrate(database_url)
    assert current_revision(database_url) == head_revision()
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), all_metadata())
    finally:
        engine.dispose()
    assert diff == []


async def test_registered_birth_is_found_by_every_identifier(store):
    result = await store.upsert_bundle(fixture_bundle("birth", status="REGISTERED"))
    assert result.changed
    assert result.is_registered
    assert result.record_id == "09f39e17-ca23-4905-9ab3-f3649c4e3162"
    assert len(result.person_keys) == 3  # child, mother, father
    assert await store.count_persons() == 3

    for id_type, value in [
        (IdentifierType.BRN, CHILD_BRN),
        (IdentifierType.OPENCRVS_RECORD_ID, "09f39e17-ca23-4905-9ab3-f3649c4e3162"),
        (IdentifierType.OPENCRVS_TRACKING_ID, "B3VUXES"),
    ]:
        page = await store.search(lookup(id_type, value))
        assert page.total_count == 1
        person = _decode(page.records[0])
        assert person["name"] == {"surname": "Baumbach", "given_name": "Isadore"}
        assert person["parent1_identifier"] == {
            "identifier_type": "UIN",
            "identifier_value": MOTHER_NID,
        }

    for id_type in (IdentifierType.UIN, IdentifierType.NID):  # NID is an alias of UIN
        page = await store.search(lookup(id_type, MOTHER_NID))
        assert [_decode(r)["name"]["given_name"] for r in page.records] == ["Sophia"]
    mother = await store.get(IdentifierType.NID, MOTHER_NID)
    assert mother is not None
    assert "birth_place" not in _decode(mother)  # no events invented for a mentioned mother
    assert await store.get(IdentifierType.BRN, "nope") is None
    # exact bytes: what is stored is what a search returns
    child = await store.get(IdentifierType.BRN, CHILD_BRN)
    page = await store.search(lookup(IdentifierType.BRN, CHILD_BRN, "unknown", CHILD_BRN))
    assert [bytes(r) for r in page.records] == [bytes(child)]


async def test_upsert_is_idempotent(store):
    bundle = fixture_bundle("death")
    first = await store.upsert_bundle(bundle)
    again = await store.upsert_bundle(fixture_bundle("death"))
    assert first.changed
    assert not again.changed
    assert again.person_keys == first.person_keys
    assert await store.count_persons() == 2  # the deceased and the spouse informant
    with store.engine.connect() as conn:
        stamps = conn.execute(sa.text("SELECT updated_at FROM fhir_record")).scalars().all()
    assert len(stamps) == 1


async def test_unregistered_records_are_stored_but_hidden(store):
    waiting = await store.upsert_bundle(fixture_bundle("birth"))  # WAITING_VALIDATION
    assert waiting.changed
    assert not waiting.is_registered
    assert await store.count_persons() == 0
    assert (await store.search(lookup(IdentifierType.BRN, CHILD_BRN))).total_count == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM fhir_record")).scalar_one() == 1

    await store.upsert_bundle(fixture_bundle("birth", status="CERTIFIED"))
    assert (await store.search(lookup(IdentifierType.BRN, CHILD_BRN))).total_count == 1
    await store.upsert_bundle(fixture_bundle("birth", status="ARCHIVED"))
    assert await store.count_persons() == 0
    assert (await store.search(lookup(IdentifierType.UIN, MOTHER_NID))).total_count == 0


def _death_of_the_child():
    """The death fixture, with the deceased carrying the birth fixture child's BRN."""
    bundle = fixture_bundle("death")
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("id") == "d55283fe-b5bc-497d-86f3-5370957b0642":
            res["identifier"].append(
                {
                    "value": CHILD_BRN,
                    "type": {
                        "coding": [
                            {
                                "system": "http://opencrvs.org/specs/identifier-type",
                                "code": "BIRTH_REGISTRATION_NUMBER",
                            }
                        ]
                    },
                }
            )
    return bundle


@pytest.mark.parametrize("birth_first", [True, False])
async def test_death_joins_the_birth_by_brn_in_either_order(store, birth_first):
    bundles = [fixture_bundle("birth", status="REGISTERED"), _death_of_the_child()]
    for bundle in bundles if birth_first else reversed(bundles):
        await store.upsert_bundle(bundle)

    assert await store.count_persons() == 4  # child=deceased, mother, father, spouse
    by_brn = await store.search(lookup(IdentifierType.BRN, CHILD_BRN))
    by_uin = await store.search(lookup(IdentifierType.UIN, DECEASED_NID))
    assert by_brn.total_count == by_uin.total_count == 1
    assert bytes(by_brn.records[0]) == bytes(by_uin.records[0])
    person = _decode(by_brn.records[0])
    assert person["birth_date"] == "2023-07-11"
    assert person["death_date"] == "2023-07-24"
    assert person["birth_place"]["name"] == "Keembe Rural Health Centre"
    assert person["death_place"]["name"] == "Golden Valley Rural Health Centre"
    types = sorted({i["identifier_type"] for i in person["identifier"]})
    assert types == ["BRN", "DRN", "OPENCRVS_RECORD_ID", "OPENCRVS_TRACKING_ID", "UIN"]
    both = RecordQuery(
        where=IdentifierLookup(IdentifierType.UIN, (DECEASED_NID,)),
        event_types=frozenset({EventType.LIVE_BIRTH}),
    )
    assert (await store.search(both)).total_count == 1
    divorced = RecordQuery(event_types=frozenset({EventType.DIVORCE}))
    assert (await store.search(divorced)).total_count == 0


async def test_a_record_proving_two_persons_are_one_merges_them(store):
    await store.upsert_bundle(fixture_bundle("birth", status="REGISTERED"))
    await store.upsert_bundle(fixture_bundle("death"))
    assert await store.count_persons() == 5
    # a second death-like record whose deceased holds the deceased's NID and the child's BRN
    bundle = _death_of_the_child()
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Composition":
            res["id"] = "11111111-2222-4333-8444-555555555555"
        if res["resourceType"] == "Task":
            res["focus"]["reference"] = "Composition/11111111-2222-4333-8444-555555555555"
            res["identifier"] = [
                {"system": "http://opencrvs.org/specs/id/death-tracking-id", "value": "DXXXXXX"},
                {
                    "system": "http://opencrvs.org/specs/id/death-registration-number",
                    "value": "2023DXXXXXX",
                },
            ]
    result = await store.upsert_bundle(bundle)
    assert await store.count_persons() == 4
    assert len(result.person_keys) >= 2
    page = await store.search(lookup(IdentifierType.BRN, CHILD_BRN))
    ids = {
        (i["identifier_type"], i["identifier_value"])
        for i in _decode(page.records[0])["identifier"]
    }
    assert {("UIN", DECEASED_NID), ("BRN", CHILD_BRN), ("DRN", "2023DL1W8FV")} <= ids


async def test_malformed_bundle_changes_nothing(store):
    bundle = fixture_bundle("birth", status="REGISTERED")
    bundle["entry"].append({"fullUrl": "urn:uuid:x"})
    with pytest.raises(MappingError):
        await store.upsert_bundle(bundle)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM fhir_record")).scalar_one() == 0


async def test_queries_the_store_cannot_answer_are_rejected(store):
    bad = [
        RecordQuery(where=Comparison(Attribute.BIRTH_PLACE, ExpOperator.GT, "x")),
        RecordQuery(where=Comparison(Attribute.BIRTH_DATE, ExpOperator.EQ, "last tuesday")),
        RecordQuery(where=Comparison(Attribute.BIRTH_YEAR, ExpOperator.EQ, True)),
        RecordQuery(where=Comparison(Attribute.IS_DECEASED, ExpOperator.LT, True)),
        RecordQuery(where=Comparison(Attribute.IDENTIFIER, ExpOperator.EQ, "x")),
        RecordQuery(sort=(SortKey(Attribute.IDENTIFIER),)),
        RecordQuery(where=Comparison(Attribute.GIVEN_NAME, ExpOperator.EQ, "a\x00")),
        lookup(IdentifierType.BRN, "2023\x00"),
        RecordQuery(where=Not(lookup(IdentifierType.UIN, "\x00").where)),
    ]
    for query in bad:
        with pytest.raises(ItemRejection) as caught:
            await store.search(query)
        assert caught.value.code in {"rjct.filter.invalid", "rjct.sort.invalid"}


async def test_seeded_population_pages_sorts_and_counts(database_url):
    persons = await seed_store(database_url, 160, seed=5)
    known = known_persons(seed=5)
    async with _opened(database_url) as store:
        assert await store.count_persons() == persons >= 160
        married = await store.search(lookup(IdentifierType.MRN, known.married_mrn))
        uins = {
            i["identifier_value"]
            for r in married.records
            for i in _decode(r)["identifier"]
            if i["identifier_type"] == "UIN"
        }
        assert married.total_count == 2  # an MRN belongs to both spouses
        assert {known.bride_uin, known.groom_uin} <= uins

        everyone = RecordQuery(
            sort=(SortKey(Attribute.BIRTH_DATE, SortOrder.DESC),), page=Page(1, 1000)
        )
        full = await store.search(everyone)
        assert full.total_count == persons == len(full.records)
        pages = []
        for number in range(1, 100):
            page = await store.search(RecordQuery(sort=everyone.sort, page=Page(number, 7)))
            assert page.total_count == persons
            if not page.records:
                break
            pages.extend(bytes(r) for r in page.records)
        assert pages == [bytes(r) for r in full.records]
        dates = [_decode(r).get("birth_date") for r in full.records]
        present = [d for d in dates if d]
        assert present == sorted(present, reverse=True)
        assert dates[len(present) :] == [None] * (len(dates) - len(present))  # absent last

        beyond = await store.search(RecordQuery(page=Page(1000, 10)))
        assert beyond.records == []
        assert beyond.total_count == persons

        in_place = await store.search(
            RecordQuery(
                where=And(
                    (
                        Comparison(
                            Attribute.BIRTH_PLACE,
                            ExpOperator.EQ,
                            known.child_birth_facility_id.upper(),
                        ),
                        Comparison(
                            Attribute.GIVEN_NAME, ExpOperator.EQ, known.child_given_name.upper()
                        ),
                        Not(Comparison(Attribute.IS_DECEASED, ExpOperator.EQ, True)),
                    )
                )
            )
        )
        brns = {
            i["identifier_value"]
            for r in in_place.records
            for i in _decode(r)["identifier"]
            if i["identifier_type"] == "BRN"
        }
        assert known.child_brn in brns

        deaths = await store.search(
            RecordQuery(event_types=frozenset({EventType.DEATH}), page=Page(1, 100))
        )
        assert deaths.total_count > 0
        assert all("death_date" in _decode(r) for r in deaths.records)

    assert await seed_store(database_url, 10, seed=99) == persons  # left alone unless replace


async def test_bulk_seed_equals_indexing_bundles_one_by_one(database_url, tmp_path):
    await seed_store(database_url, 60, seed=11)
    other = f"sqlite:///{tmp_path / 'one-by-one.sqlite3'}"
    migrate(other)
    async with _opened(other) as store:
        for bundle in generate_bundles(60, seed=11):
            await store.upsert_bundle(bundle)
    assert _persons(database_url) == _persons(other)


async def test_concurrent_upserts_give_the_same_population(store, tmp_path):
    import anyio

    bundles = list(generate_bundles(80, seed=13))
    limiter = anyio.CapacityLimiter(8)

    async def upsert(bundle) -> None:
        async with limiter:
            await store.upsert_bundle(bundle)

    async with anyio.create_task_group() as group:
        for bundle in bundles:
            group.start_soon(upsert, bundle)
    reference = f"sqlite:///{tmp_path / 'bulk.sqlite3'}"
    expected = await seed_store(reference, 80, seed=13)
    assert await store.count_persons() == expected
    for id_type in ("UIN", "BRN", "DRN", "MRN"):
        assert _identifier_count(store.url, id_type) == _identifier_count(reference, id_type)


def _identifier_count(url: str, id_type: str) -> int:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM person_identifier WHERE id_type = :t")
            return int(conn.execute(query, {"t": id_type}).scalar_one())
    finally:
        engine.dispose()


def _persons(url: str) -> dict[str, bytes]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(person_table.c.person_key, person_table.c.dci_json))
            return {key: bytes(data) for key, data in rows}
    finally:
        engine.dispose()


class _opened:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> EmbeddedFhirStore:
        self.store = await EmbeddedFhirStore.open(self.url)
        return self.store

    async def __aexit__(self, *exc: object) -> None:
        await self.store.aclose()
