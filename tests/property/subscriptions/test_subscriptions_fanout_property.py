"""Hypothesis: for generated subscriptions and a registered event, exactly the subscriptions
whose filter the event's person satisfies get a notify, and nobody gets two.

The oracle is the embedded store's own SQL (`sql_query.compile_expr` over the `person` table),
an independent implementation of the filter rules that search uses; the fan-out evaluates
the same filters in Python (`registry.matching`). Each example runs in a transaction that is
rolled back, over one SQLite store indexed once with a seeded population.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from dci_bridge.clock import FixedClock
from dci_bridge.db.engine import begin_write, create_sync_engine, migrate
from dci_bridge.protocol.codes import EventType, event_type_wire
from dci_bridge.protocol.subscribe import SubscribeRequest
from dci_bridge.records.indexer import UpsertResult, index_bundle, link_table, person_table
from dci_bridge.records.mapped import SUBJECT_ROLES, MappedRecord, RecordEvent
from dci_bridge.records.sql_query import compile_expr
from dci_bridge.records.translate import translate_filter
from dci_bridge.registry.callbacks import RecordingSink
from dci_bridge.registry.ids import UuidSource
from dci_bridge.registry.notify import EVENT_OF_RECORD, Fanout, notify_event_table
from dci_bridge.registry.subscriptions import SubscriptionService, SubscriptionStore
from dci_bridge.settings import Settings
from tests.subscriptions_support import bundles_of, sample_bundles

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@dataclass(repr=False)
class World:
    engine: sa.Engine
    records: list[tuple[MappedRecord, UpsertResult]]
    values: dict[str, list[Any]]

    def __repr__(self) -> str:
        return f"World({len(self.records)} records)"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("fanout") / "store.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = create_sync_engine(url, pool_size=2)
    records = []
    with begin_write(engine) as conn:
        for bundle in sample_bundles():
            records.append(index_bundle(conn, bundle, now=NOW))
    mapped = [record for event in RecordEvent for _, record in bundles_of(event)]
    by_id = {r.record_id: r for r in mapped}
    pairs = [(by_id[u.record_id], u) for u in records if u.record_id in by_id]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(person_table)).mappings().all()
    values: dict[str, list[Any]] = {
        "sex": sorted({r["sex"] for r in rows if r["sex"]}),
        "given_name": sorted({r["given_name"] for r in rows if r["given_name"]})[:20],
        "birth_date": sorted({r["birth_date"].isoformat() for r in rows if r["birth_date"]})[:40],
        "birth_year": sorted({r["birth_year"] for r in rows if r["birth_year"]}),
        "place": sorted(
            {
                r[c]
                for r in rows
                for c in (
                    "birth_facility_id",
                    "birth_district_id",
                    "birth_state_id",
                    "death_district_id",
                    "death_state_id",
                )
                if r[c]
            }
        ),
    }
    yield World(engine, pairs, values)
    engine.dispose()


def _predicate(draw: st.DrawFn, values: dict[str, list[Any]]) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "sex",
                "given_name",
                "birth_date",
                "birth_year",
                "birth_place",
                "death_place",
                "is_deceased",
            ]
        )
    )
    if kind in ("birth_place", "death_place"):
        op = draw(st.sampled_from(["eq", "in"]))
        value: Any = draw(st.sampled_from(values["place"]))
        if op == "in":
            value = [value, draw(st.sampled_from(values["place"]))]
    elif kind == "is_deceased":
        op, value = "eq", draw(st.booleans())
    elif kind == "birth_year":
        op = draw(st.sampled_from(["eq", "lt", "ge", "gt", "le"]))
        value = draw(st.sampled_from(values["birth_year"]))
    else:
        pool = values[kind]
        op = draw(st.sampled_from(["eq", "lt", "ge"] if kind == "birth_date" else ["eq", "gt"]))
        value = draw(st.sampled_from(pool))
    return {"attribute_name": kind, "operator": op, "attribute_value": value}


@st.composite
def filters(draw: st.DrawFn, values: dict[str, list[Any]]) -> list[dict[str, Any]]:
    items = []
    for seq in range(draw(st.integers(min_value=0, max_value=3))):
        item: dict[str, Any] = {"seq_num": seq, "expression1": _predicate(draw, values)}
        condition = draw(st.sampled_from([None, "and", "or", "not"]))
        if condition is not None:
            item["condition"] = condition
            if condition != "not" or draw(st.booleans()):
                item["expression2"] = _predicate(draw, values)
        items.append(item)
    return items


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_exactly_the_matching_subscriptions_are_notified(world: World, data: st.DataObject):
    record, result = data.draw(st.sampled_from(world.records), label="event")
    count = data.draw(st.integers(min_value=1, max_value=8), label="subscriptions")
    plans = [
        (
            data.draw(st.sampled_from([EventType.LIVE_BIRTH, EventType.DEATH, EventType.MARRIAGE])),
            data.draw(filters(world.values)),
        )
        for _ in range(count)
    ]
    settings_ = Settings()
    sink = RecordingSink()
    store = SubscriptionStore()
    clock = FixedClock(NOW)
    service = SubscriptionService(world.engine, store, settings_, clock, UuidSource(), sink)
    fanout = Fanout(store, sink, settings_, clock, UuidSource())
    with world.engine.connect() as conn:
        conn = conn.execution_options(sqlite_write=True)
        transaction = conn.begin()
        try:
            codes: list[tuple[str, EventType, list[dict[str, Any]]]] = []
            for event, filter_value in plans:
                request = msgspec.convert(
                    {
                        "transaction_id": "t",
                        "subscribe_request": [
                            {
                                "reference_id": "r",
                                "timestamp": "2026-11-23T12:00:00Z",
                                "subscribe_criteria": {
                                    "reg_event_type": event_type_wire(event),
                                    "filter_type": "predicate",
                                    "filter": filter_value,
                                    "notify_record_type": "Person",
                                },
                            }
                        ],
                    },
                    SubscribeRequest,
                )
                answer = service.subscribe(
                    conn,
                    sender_id=f"sp-{len(codes)}",
                    notify_url="http://127.0.0.1:9/n",
                    encrypt=False,
                    request=request,
                    correlation_id="c",
                )
                item = answer.subscribe_response[0]
                assert item.status == "succ", item
                assert item.subscriptions is not None
                codes.append((item.subscriptions[0].code, event, filter_value))
            conn.execute(notify_event_table.delete())
            notified = fanout.fan_out(conn, result, inbox_id=None, now=NOW)
            again = fanout.fan_out(conn, result, inbox_id=None, now=NOW)

            subjects = sa.select(link_table.c.person_key).where(
                link_table.c.record_id == record.record_id,
                link_table.c.role.in_([r.value for r in SUBJECT_ROLES]),
            )
            expected = set()
            for code, event, filter_value in codes:
                if event is not EVENT_OF_RECORD[record.event]:
                    continue
                where = translate_filter(None, filter_value)
                query = (
                    sa.select(sa.func.count())
                    .select_from(person_table)
                    .where(person_table.c.person_key.in_(subjects))
                )
                if where is not None:
                    query = query.where(compile_expr(where))
                if conn.execute(query).scalar_one():
                    expected.add(code)
        finally:
            transaction.rollback()
    got = [job.header.meta["subscription_code"] for job in sink.jobs if job.kind == "notify"]  # type: ignore[index]
    target(float(len(expected)), label="subscriptions notified")
    assert sorted(got) == sorted(expected)
    assert notified == len(expected)
    assert again == 0
