"""Hypothesis: the store answers generated queries exactly as the Python oracle does.

A 300-person seeded population is loaded once per backend (SQLite, PostgreSQL); the oracle
evaluates the same queries over the persons built in memory from the same bundles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci_bridge.protocol.codes import EventType, ExpOperator, IdentifierType, SortOrder
from dci_bridge.records.bulk import PopulationIndex
from dci_bridge.records.fhir_map import map_bundle
from dci_bridge.records.person import PersonView
from dci_bridge.records.query import (
    And,
    Attribute,
    Comparison,
    IdentifierLookup,
    Not,
    Or,
    Page,
    RecordQuery,
    SortKey,
)
from dci_bridge.records.seed import generate_bundles, seed_store
from dci_bridge.records.store import EmbeddedFhirStore
from tests.property.records import records_oracle as oracle

PERSONS = 300
SEED = 424242


@dataclass(repr=False)
class Loaded:
    store: EmbeddedFhirStore
    loop: asyncio.AbstractEventLoop
    views: list[PersonView]

    def __repr__(self) -> str:
        return f"Loaded({self.store.url.split(':', 1)[0]}, {len(self.views)} persons)"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints dataclasses field by field
        printer.text(repr(self))


def _views() -> list[PersonView]:
    index = PopulationIndex()
    for bundle in generate_bundles(PERSONS, SEED):
        index.add(map_bundle(bundle))
    return list(index.persons())


VIEWS = _views()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('oracle') / 'store.sqlite3'}"
        drop = None
    else:
        import psycopg

        admin = request.getfixturevalue("pg_server")
        name = f"dci_oracle_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{admin.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"
        drop = (admin, name)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(seed_store(url, PERSONS, SEED))
        store = loop.run_until_complete(EmbeddedFhirStore.open(url))
        yield Loaded(store, loop, VIEWS)
        loop.run_until_complete(store.aclose())
    finally:
        loop.close()
        if drop is not None:
            import psycopg

            with psycopg.connect(drop[0], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)')
        else:
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)


# Text that can arrive on the wire: JSON decoding refuses lone surrogates, the translator NUL.
WIRE_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")

# --- value pools drawn from the population, plus values that match nobody -------------


def _pool(values) -> list:
    return sorted({v for v in values if v is not None}, key=repr)


GIVEN = _pool(v.given_name for v in VIEWS)
SURNAMES = _pool(v.surname for v in VIEWS)
DATES = _pool(
    [v.birth_date for v in VIEWS] + [v.death_date for v in VIEWS] + [v.marriage_date for v in VIEWS]
)
INSTANTS = _pool(v.registration_date for v in VIEWS) + _pool(v.last_updated for v in VIEWS)
YEARS = _pool([v.birth_year for v in VIEWS] + [v.death_year for v in VIEWS])
PLACE_IDS = _pool(
    i
    for v in VIEWS
    for p in (v.birth_place, v.death_place)
    if p is not None
    for i in (p.facility_id, p.district_id, p.state_id)
)
IDENTIFIERS: dict[IdentifierType, list[str]] = {}
for _view in VIEWS:
    for _kind, _value in _view.identifiers:
        IDENTIFIERS.setdefault(_kind, []).append(_value)


def _cased(pool: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(pool).flatmap(
        lambda s: st.sampled_from([s, s.lower(), s.upper(), s[:-1] or s])
    ) | st.text(WIRE_CHARS, max_size=4)


TEXT_VALUES = {
    Attribute.GIVEN_NAME: _cased(GIVEN),
    Attribute.SURNAME: _cased(SURNAMES),
    Attribute.SEX: st.sampled_from(["male", "FEMALE", "Female", "other", "unknown"]),
    Attribute.MARITAL_STATUS: st.sampled_from(["M", "m", "S", "W"]),
}
DATE_VALUES = st.sampled_from(DATES) | st.dates(dt.date(1940, 1, 1), dt.date(2026, 12, 31))
DATE_TEXT = DATE_VALUES.map(lambda d: d.isoformat())
INSTANT_VALUES = (
    st.sampled_from(INSTANTS)
    | st.sampled_from(INSTANTS).map(lambda t: t.date())
    | st.sampled_from(INSTANTS).map(lambda t: t.replace(microsecond=0))
)
YEAR_VALUES = st.sampled_from(YEARS) | st.integers(1940, 2030)
PLACE_VALUES = st.sampled_from(PLACE_IDS).flatmap(
    lambda s: st.sampled_from([s, s.upper()])
) | st.just(str(uuid.UUID(int=7)))
ORDERED = [
    ExpOperator.EQ,
    ExpOperator.GT,
    ExpOperator.GE,
    ExpOperator.LT,
    ExpOperator.LE,
    ExpOperator.IN,
]


def _comparison(attribute: Attribute) -> st.SearchStrategy[Comparison]:
    if attribute in TEXT_VALUES:
        values, ops = TEXT_VALUES[attribute], ORDERED
    elif attribute in (Attribute.BIRTH_DATE, Attribute.DEATH_DATE, Attribute.MARRIAGE_DATE):
        values, ops = DATE_VALUES | DATE_TEXT, ORDERED
    elif attribute in (Attribute.REGISTRATION_DATE, Attribute.LAST_UPDATED):
        values, ops = INSTANT_VALUES, ORDERED
    elif attribute in (Attribute.BIRTH_YEAR, Attribute.DEATH_YEAR):
        values, ops = YEAR_VALUES, ORDERED
    elif attribute in (Attribute.BIRTH_PLACE, Attribute.DEATH_PLACE):
        values, ops = PLACE_VALUES, [ExpOperator.EQ, ExpOperator.IN]
    else:
        values, ops = st.booleans(), [ExpOperator.EQ, ExpOperator.IN]

    def build(op: ExpOperator) -> st.SearchStrategy[Comparison]:
        if op is ExpOperator.IN:
            return st.lists(values, max_size=3).map(lambda vs: Comparison(attribute, op, tuple(vs)))
        return values.map(lambda v: Comparison(attribute, op, v))

    return st.sampled_from(ops).flatmap(build)


SEARCHABLE = [a for a in Attribute if a is not Attribute.IDENTIFIER]
comparisons = st.sampled_from(SEARCHABLE).flatmap(_comparison)
lookups = st.sampled_from(list(IdentifierType)).flatmap(
    lambda t: st.lists(
        st.sampled_from(
            IDENTIFIERS.get(IdentifierType.UIN if t is IdentifierType.NID else t, ["x"])
        )
        | st.text(WIRE_CHARS, max_size=3),
        min_size=1,
        max_size=3,
    ).map(lambda vs: IdentifierLookup(t, tuple(vs)))
)
expressions = st.recursive(
    comparisons | lookups,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda xs: And(tuple(xs)))
        | st.lists(inner, max_size=3).map(lambda xs: Or(tuple(xs)))
        | inner.map(Not)
    ),
    max_leaves=5,
)
queries = st.builds(
    RecordQuery,
    where=st.none() | expressions,
    event_types=st.frozensets(st.sampled_from(list(EventType)), max_size=2),
    sort=st.lists(
        st.builds(SortKey, st.sampled_from(SEARCHABLE), st.sampled_from(list(SortOrder))),
        max_size=2,
    ).map(tuple),
    page=st.builds(Page, st.integers(1, 4), st.integers(1, 25)),
)
plain_lookups = st.builds(
    RecordQuery,
    where=lookups,
    event_types=st.frozensets(st.sampled_from(list(EventType)), max_size=2),
    page=st.builds(Page, st.integers(1, 2), st.integers(1, 3)),
)


def _keys(page) -> list[str]:
    return [json.loads(bytes(r))["@id"].removeprefix("urn:uuid:") for r in page.records]


def _check(loaded: Loaded, query: RecordQuery) -> None:
    page = loaded.loop.run_until_complete(loaded.store.search(query))
    expected_keys, expected_total = oracle.run(loaded.views, query)
    assert (_keys(page), page.total_count) == (expected_keys, expected_total)


def test_population_is_the_oracles_population(loaded):
    everyone = RecordQuery(page=Page(1, 10_000))
    _check(loaded, everyone)
    assert len(loaded.views) >= PERSONS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=queries)
def test_store_matches_oracle(loaded, query):
    _check(loaded, query)


@settings(max_examples=60, deadline=None)
@given(query=plain_lookups)
def test_identifier_fast_path_matches_oracle(loaded, query):
    _check(loaded, query)


@settings(max_examples=25, deadline=None)
@given(batch=st.lists(plain_lookups, min_size=5, max_size=40))
def test_concurrent_lookups_match_oracle(loaded, batch):
    """Many look-ups at once: on PostgreSQL the waiting ones are answered by batched queries."""

    async def run_all():
        return await asyncio.gather(*(loaded.store.search(q) for q in batch))

    pages = loaded.loop.run_until_complete(run_all())
    for query, page in zip(batch, pages, strict=True):
        expected_keys, expected_total = oracle.run(loaded.views, query)
        assert (_keys(page), page.total_count) == (expected_keys, expected_total)
