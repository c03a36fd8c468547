"""Cost of disclosure policies and notify audit rows on the fan-out transaction.

One registered event fanned out to N subscriptions (default 100, one sender each) into the
real delivery outbox, inside the ingest's write transaction (rolled back after each run, so
every run does the same work), measured alternately in the same process:
- `off`: policies off, audit off (what the fan-out did before);
- `on`: each subscriber has a policy in the database (read in the transaction by
  `PolicyStore.current`), every record is minimised, and one audit row per notify is
  written in the same transaction.
Prints per-event milliseconds (median, p95) and the on/off ratio, on SQLite and, when it
answers, PostgreSQL.

    python bench/notify_policy.py [--subscribers 100] [--rounds 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dci_bridge.clock import FixedClock
from dci_bridge.db.engine import begin_write, create_sync_engine, migrate
from dci_bridge.protocol.subscribe import SubscribeRequest
from dci_bridge.records.indexer import UpsertResult, index_bundle
from dci_bridge.records.mapped import RecordEvent
from dci_bridge.registry.callbacks import OutboxSink
from dci_bridge.registry.ids import UuidSource
from dci_bridge.registry.notify import Fanout
from dci_bridge.registry.policy import parse_policy
from dci_bridge.registry.policy_store import PolicyStore
from dci_bridge.registry.subscriptions import SubscriptionService, SubscriptionStore
from dci_bridge.settings import Settings
from tests.subscriptions_support import sample_bundles

POLICY = Path(__file__).resolve().parents[1] / "docs" / "policies" / "cash-transfer.json"
PG = os.environ.get("DCI_BRIDGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def prepare(url: str, subscribers: int) -> tuple[sa.Engine, list[UpsertResult]]:
    migrate(url)
    engine = create_sync_engine(url, pool_size=2)
    clock = FixedClock(dt.datetime.now(dt.UTC))
    with begin_write(engine) as conn:
        results = [index_bundle(conn, b, now=clock.now()) for b in sample_bundles()]
    births = [r for r in results if r.is_registered and r.event_type is RecordEvent.BIRTH]
    store = PolicyStore(engine)
    policy = parse_policy(POLICY.read_bytes())
    service = SubscriptionService(
        engine, SubscriptionStore(), Settings(), clock, UuidSource(), OutboxSink()
    )
    request = msgspec.convert(
        {
            "transaction_id": "t",
            "subscribe_request": [
                {
                    "reference_id": "r",
                    "timestamp": "2026-11-23T12:00:00Z",
                    "subscribe_criteria": {
                        "reg_event_type": "LiveBirth",
                        "filter": [],
                        "notify_record_type": "Person",
                    },
                }
            ],
        },
        SubscribeRequest,
    )
    for i in range(subscribers):
        sender = f"sp-{i}.example.org"
        store.set(sender, policy)
        with begin_write(engine) as conn:
            service.subscribe(
                conn,
                sender_id=sender,
                notify_url="http://127.0.0.1:9/registry/notify",
                encrypt=False,
                request=request,
                correlation_id="c",
            )
    return engine, births


def one(engine: sa.Engine, fanout: Fanout, result: UpsertResult) -> float:
    clock = fanout.clock
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_write=True)
        transaction = conn.begin()
        try:
            started = time.perf_counter()
            count = fanout.fan_out(conn, result, inbox_id=None, now=clock.now())
            elapsed = time.perf_counter() - started
            assert count > 0
        finally:
            transaction.rollback()
    return elapsed


def measure(name: str, url: str, subscribers: int, rounds: int) -> None:
    engine, births = prepare(url, subscribers)
    clock = FixedClock(dt.datetime.now(dt.UTC))
    subs = SubscriptionStore()
    off = Fanout(
        subs,
        OutboxSink(),
        Settings.from_env({"DCI_BRIDGE_AUDIT__ENABLED": "false"}),
        clock,
        UuidSource(),
    )
    on = Fanout(subs, OutboxSink(), Settings(), clock, UuidSource(), policies=PolicyStore(engine))
    times: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(3):  # warm-up (policy compile, caches)
        one(engine, off, births[0])
        one(engine, on, births[0])
    for i in range(rounds):
        result = births[i % len(births)]
        times["off"].append(one(engine, off, result))
        times["on"].append(one(engine, on, result))
    engine.dispose()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    p95 = {k: sorted(v)[int(0.95 * (len(v) - 1))] * 1000 for k, v in times.items()}
    print(
        f"{name:<10} {subscribers:>4} subs  off {med['off']:7.2f} ms (p95 {p95['off']:7.2f})"
        f"  on {med['on']:7.2f} ms (p95 {p95['on']:7.2f})"
        f"  ratio on/off {med['on'] / med['off']:.2f}"
        f"  per notify +{(med['on'] - med['off']) / subscribers * 1000:.0f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{tmp}/bench.sqlite3", args.subscribers, args.rounds)
    try:
        with psycopg.connect(PG, connect_timeout=3, autocommit=True) as admin:
            name = f"bench_{uuid.uuid4().hex[:12]}"
            admin.execute(f"CREATE DATABASE {name}")
    except psycopg.Error:
        print("postgresql not reachable: skipped")
        return
    base = PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        measure("postgresql", f"{base}/{name}", args.subscribers, args.rounds)
    finally:
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
