"""Hypothesis: for generated disclosure policies, subscriptions and registered events, no
notify payload carries a field outside its subscriber's policy: not for events sent at once,
not for batched ones, not after the policy was narrowed between subscribing and the event.

Each example subscribes a few senders under their policies (a subscription outside the policy
must be refused with the subscribe reason codes), then fans out one registered event (and
flushes the batches) under the "current" policies, which may be narrower. Checked: every
notify belongs to a subscription still within the current policy, every record in it holds
only the policy's fields and answers, and no value of a field outside the policy appears
anywhere in the envelope. One SQLite store indexed once; each example is rolled back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci_bridge.clock import FixedClock
from dci_bridge.db.engine import begin_write, create_sync_engine, migrate
from dci_bridge.errors import ItemRejection
from dci_bridge.protocol.codec import encode
from dci_bridge.protocol.codes import EventType
from dci_bridge.protocol.subscribe import SubscribeRequest
from dci_bridge.records.indexer import UpsertResult, index_bundle, person_table
from dci_bridge.records.translate import translate_filter
from dci_bridge.registry.audit import _EVENT as audit_table
from dci_bridge.registry.callbacks import RecordingSink
from dci_bridge.registry.ids import UuidSource
from dci_bridge.registry.notify import Fanout, notify_event_table
from dci_bridge.registry.policy import DisclosurePolicy, compile_policy, field_paths
from dci_bridge.registry.policy_store import StaticPolicies
from dci_bridge.registry.subscriptions import SubscriptionService, SubscriptionStore
from dci_bridge.settings import Settings
from tests.policy_support import allowed_keys, leaks
from tests.subscriptions_support import sample_bundles

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)
EVENTS = ["LiveBirth", "Death", "Marriage"]
ATTRIBUTES = ["sex", "birth_date", "birth_year", "birth_place", "is_deceased"]
FILTERED = ["sex", "birth_date", "birth_year", "is_deceased"]
ID_TYPES = ["UIN", "BRN", "DRN", "MRN", "OPENCRVS_RECORD_ID"]
PATHS = field_paths() + [f"identifier[{t}]" for t in ID_TYPES]
ANSWERS = ["is_deceased", "is_alive", "age_at_least:18"]
EVERY_EVENT = ["*"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sa.Engine, list[Any]]]:
    path: Path = tmp_path_factory.mktemp("policy-notify") / "store.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = create_sync_engine(url, pool_size=2)
    results: list[UpsertResult] = []
    with begin_write(engine) as conn:
        for bundle in sample_bundles():
            results.append(index_bundle(conn, bundle, now=NOW))
    yield engine, [r for r in results if r.is_registered]
    engine.dispose()


def _subset(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.just(["*"]) | st.lists(st.sampled_from(values), max_size=len(values), unique=True)


policies = st.builds(
    DisclosurePolicy,
    event_types=_subset(EVENTS),
    query_types=st.just(["*"]),
    identifier_types=st.just(["*"]),
    search_attributes=_subset(ATTRIBUTES),
    fields=st.lists(st.sampled_from(PATHS), max_size=8, unique=True),
    answers=st.lists(st.sampled_from(ANSWERS), max_size=2, unique=True),
)


def _predicate(draw: st.DrawFn) -> dict[str, Any]:
    """A filter item most events satisfy, on one attribute (a policy may not allow it)."""
    attribute = draw(st.sampled_from(FILTERED))
    if attribute == "sex":  # not (sex = zzz): true for everyone
        return {"seq_num": 0, "condition": "not", "expression1": _expr("sex", "eq", "zzz")}
    if attribute == "is_deceased":
        return {"seq_num": 0, "expression1": _expr(attribute, "eq", draw(st.booleans()))}
    value = "1900-01-01" if attribute == "birth_date" else 1900
    return {"seq_num": 0, "expression1": _expr(attribute, "gt", value)}


def _expr(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    return {"attribute_name": attribute, "operator": operator, "attribute_value": value}


@st.composite
def subscriptions(draw: st.DrawFn) -> dict[str, Any]:
    criteria: dict[str, Any] = {
        "reg_event_type": f"spdci-common:RegistryEventType:{draw(st.sampled_from(EVENTS))}",
        "filter_type": "predicate",
        "filter": [_predicate(draw)] if draw(st.booleans()) else [],
        "notify_record_type": "Person",
    }
    if draw(st.booleans()):
        criteria["frequency"] = {
            "start_time": "2026-11-23T00:00:00Z",
            "end_time": "2026-12-23T00:00:00Z",
            "frequency": "0 0 * * *",
        }
    return criteria


def _narrowed(draw: st.DrawFn, policy: DisclosurePolicy) -> DisclosurePolicy:
    """The same policy or a narrower one (fewer fields, events, attributes)."""
    choice = draw(st.sampled_from(["same", "fields", "events", "attributes"]))
    if choice == "fields":
        return msgspec.structs.replace(
            policy, fields=draw(st.lists(st.sampled_from(PATHS), max_size=3, unique=True))
        )
    if choice == "events":
        return msgspec.structs.replace(
            policy, event_types=draw(st.lists(st.sampled_from(EVENTS), max_size=1))
        )
    if choice == "attributes":
        return msgspec.structs.replace(policy, search_attributes=[])
    return policy


def _subscribe(
    service: SubscriptionService, conn: sa.Connection, sender: str, criteria: dict[str, Any]
) -> Any:
    request = msgspec.convert(
        {
            "transaction_id": "t",
            "subscribe_request": [
                {
                    "reference_id": "r",
                    "timestamp": "2026-11-23T12:00:00Z",
                    "subscribe_criteria": criteria,
                }
            ],
        },
        SubscribeRequest,
    )
    return service.subscribe(
        conn,
        sender_id=sender,
        notify_url="http://127.0.0.1:9/n",
        encrypt=False,
        request=request,
        correlation_id="c",
    ).subscribe_response[0]


def _within(policy: DisclosurePolicy, criteria: dict[str, Any]) -> bool:
    compiled = compile_policy("s", policy)
    event = EventType(criteria["reg_event_type"].rsplit(":", 1)[1])
    try:
        compiled.allows_subscription(
            reg_type=None,
            event_types=(event,),
            filter_type=None,
            filter_expr=translate_filter(None, criteria["filter"]),
        )
    except ItemRejection:
        return False
    return True


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_notify_carries_a_field_outside_the_current_policy(
    store: tuple[sa.Engine, list[UpsertResult]], data: st.DataObject
) -> None:
    engine, results = store
    result = data.draw(st.sampled_from(results), label="event")
    senders = [f"sp-{i}" for i in range(data.draw(st.integers(1, 3), label="senders"))]
    at_subscribe = {s: data.draw(policies, label=f"policy {s}") for s in senders}
    at_fanout = {s: _narrowed(data.draw, p) for s, p in at_subscribe.items()}
    plans = [
        (sender, data.draw(subscriptions(), label="subscription"))
        for sender in senders
        for _ in range(data.draw(st.integers(1, 2)))
    ]
    settings_ = Settings()
    sink = RecordingSink()
    subs = SubscriptionStore()
    service = SubscriptionService(
        engine,
        subs,
        settings_,
        FixedClock(NOW),
        UuidSource(),
        sink,
        policies=StaticPolicies(at_subscribe),
    )
    fanout = Fanout(
        subs, sink, settings_, FixedClock(NOW), UuidSource(), policies=StaticPolicies(at_fanout)
    )
    codes: dict[str, tuple[str, dict[str, Any]]] = {}
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_write=True)
        transaction = conn.begin()
        try:
            for sender, criteria in plans:
                answer = _subscribe(service, conn, sender, criteria)
                if _within(at_subscribe[sender], criteria):
                    assert answer.status == "succ", answer
                    codes[answer.subscriptions[0].code] = (sender, criteria)
                else:
                    assert answer.status == "rjct"
                    assert answer.status_reason_code in {
                        "rjct.notify_types.invalid",
                        "rjct.notify_details.invalid",
                    }
            conn.execute(notify_event_table.delete())
            fanout.fan_out(conn, result, inbox_id=None, now=NOW)
            fanout.flush_batches(conn, LATER)
            persons = [
                json.loads(bytes(row.dci_json))
                for row in conn.execute(sa.select(person_table.c.dci_json)).all()
            ]
            audited = conn.execute(
                sa.select(audit_table.c.sender_id, audit_table.c.message_id).where(
                    audit_table.c.action == "notify"
                )
            ).all()
        finally:
            transaction.rollback()
    notifies = [job for job in sink.jobs if job.kind == "notify"]
    assert sorted(audited) == sorted((j.receiver_id, j.header.message_id) for j in notifies)
    for job in notifies:
        code = job.header.meta["subscription_code"]  # type: ignore[index]
        sender, criteria = codes[code]
        policy = at_fanout[sender]
        assert _within(policy, criteria), "notified outside the current policy"
        envelope = json.loads(encode({"header": job.header, "message": job.message}))
        items = envelope["message"]["notify_event"]
        records = [r for item in items for r in item["data"]["reg_records"]]
        assert records
        for record in records:
            assert leaks(record, policy) == []
        allowed, _ = allowed_keys(policy)
        text = json.dumps(envelope)
        for person in persons:
            for key, value in person.items():
                if key in allowed or key == "@type" or not isinstance(value, str):
                    continue
                if any(value == r.get(k) for r in records for k in allowed if k in r):
                    continue  # the same text under an allowed field
                assert f'"{value}"' not in text, f"{key} leaked"
