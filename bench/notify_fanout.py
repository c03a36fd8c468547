"""Notify fan-out: OpenCRVS webhook -> bridge -> signed notify at loopback subscribers.

Runs a real bridge (`dci-bridge serve`, its own process, SQLite store in a temp dir) and one
loopback receiver (its own process, recording the arrival time of every notify), while this
process sends the webhooks, and measures:
- webhook ingest: time from POSTing a signed webhook to its 202 (p50, p99);
- one event to N subscribers (default 100): time from the POST to the last notify received
  (p50, p95 over several events), and deliveries/s;
- a sustained stream of events to M subscribers (default 10): webhook-to-delivered p50/p95
  for every notify and deliveries/s.
Targets: 100-subscriber fan-out delivered within 1 s (p95); webhook ingest p99 <= 50 ms.
`--in-process` serves the bridge from a thread of this process instead, as the first version
of this bench did: bridge, receiver and load generator then share one GIL, which measures
the bench more than the bridge.

    python bench/notify_fanout.py [--subscribers 100] [--events 10] [--stream 200] [--in-process]

Until 2026-11-23 (session 4) the receiver was a thread of this process: the notifies it took
in (hundreds per second) competed for this process's GIL with the webhook POSTs being timed,
and waiting for a count decoded every body received so far every 2 ms. Both inflated the
ingest figures; the receiver now runs apart and only appends `time path` lines to a file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dci_bridge.api.app import create_app
from dci_bridge.db.engine import migrate
from dci_bridge.records.mapped import RecordEvent
from dci_bridge.settings import Settings
from tests.security_support import DciTestClient
from tests.servers import free_port, serve_asgi, stop_process, wait_until_serving
from tests.subscriptions_support import (
    SHA_SECRET,
    bundles_of,
    post_webhook,
    subscribe_envelope,
    webhook_body,
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Receiver:
    """The loopback subscriber endpoint, in its own process; `notifies()` reads what came."""

    def __init__(self, workdir: str) -> None:
        self.arrivals = Path(workdir) / "arrivals.txt"
        self.arrivals.touch()
        port = free_port()
        script = str(Path(__file__).resolve().parent / "loopback_receiver.py")
        self.proc = subprocess.Popen([sys.executable, script, str(port), str(self.arrivals)])
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(self.base, timeout=2)
                break
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.05)

    def notifies(self) -> list[float]:
        """Arrival times (time.monotonic, the same clock in every process) of the notifies."""
        lines = (line.split() for line in self.arrivals.read_text().splitlines())
        return [float(fields[1]) for fields in lines if fields[2] == "notify"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def wait_count(receiver: Receiver, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while len(receiver.notifies()) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(receiver.notifies())} of {count} notifies arrived")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--stream", type=int, default=200)
    parser.add_argument("--stream-subscribers", type=int, default=10)
    parser.add_argument("--in-process", action="store_true", help="bridge in a thread of this")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a fresh database on this PostgreSQL server instead of a SQLite file",
    )
    args = parser.parse_args()
    births = [b for b, _ in bundles_of(RecordEvent.BIRTH)]
    deaths = [b for b, _ in bundles_of(RecordEvent.DEATH)]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(scratch_database(args.postgres))
            if args.postgres
            else f"sqlite:///{tmp}/bench.sqlite3"
        )
        migrate(url)
        sender = DciTestClient.register(url, "bench.sp")
        receiver = Receiver(tmp)
        stack.callback(receiver.close)
        receiver_base = receiver.base
        env = {
            "DCI_BRIDGE_DATABASE__URL": url,
            "DCI_BRIDGE_DATA_DIR": tmp,
            "DCI_BRIDGE_OPENCRVS_WEBHOOK__SHA_SECRET": SHA_SECRET,
            "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
            "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": f"{receiver_base}/",
            "DCI_BRIDGE_SUBSCRIPTIONS__MAX_PER_SENDER": "1000",
            "DCI_BRIDGE_LOG__LEVEL": "warning",
        }
        bridge = in_process(env) if args.in_process else bridge_process(env)
        with (
            bridge as base,
            sender.authenticated(base, timeout=30) as client,
            httpx.Client(timeout=30) as plain,
        ):
            fan = run_fanout(args, client, plain, base, receiver, receiver_base, births)
            stream = run_stream(args, client, plain, base, receiver, receiver_base, deaths)
    print("bridge:", "a thread of the bench process" if args.in_process else "its own process")
    print("database:", "PostgreSQL" if args.postgres else "SQLite file")
    print_report(args, fan, stream)


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this run; dropped at the end."""
    import uuid

    import psycopg

    name = f"dci_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def in_process(env: dict[str, str]) -> Iterator[str]:
    with serve_asgi(create_app(Settings.from_env(env))) as base:
        yield base


@contextlib.contextmanager
def bridge_process(env: dict[str, str]) -> Iterator[str]:
    """`dci-bridge serve` (1 worker) on the bench's database, until the block ends."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")} | env
    proc = subprocess.Popen(
        [sys.executable, "-m", "dci_bridge", "serve", "--port", str(port)],
        env=environ,
        cwd=Path(__file__).resolve().parents[1],
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/ready", proc)
        yield base
    finally:
        stop_process(proc)


def subscribe(client: httpx.Client, base: str, uri: str, event: str, n: int) -> None:
    for _ in range(n):
        envelope = subscribe_envelope(sender_id="bench.sp", sender_uri=uri, event_type=event)
        response = client.post(f"{base}/registry/subscribe", json=envelope)
        assert response.status_code == 200, response.text


def run_fanout(args, client, plain, base, receiver, receiver_base, births):  # type: ignore[no-untyped-def]
    subscribe(client, base, f"{receiver_base}/fan/notify", "LiveBirth", args.subscribers)
    time.sleep(1.0)  # on-subscribe callbacks out of the way
    ingest: list[float] = []
    fanout: list[float] = []
    delivered = 0
    started_all = time.monotonic()
    for bundle in births[: args.events]:
        before = len(receiver.notifies())
        t0 = time.monotonic()
        response = post_webhook(plain, base, webhook_body(bundle))
        ingest.append(time.monotonic() - t0)
        assert response.status_code == 202, response.text
        wait_count(receiver, before + args.subscribers)
        last = max(receiver.notifies()[before:])
        fanout.append(last - t0)
        delivered += args.subscribers
    elapsed = time.monotonic() - started_all
    return {"ingest": ingest, "fanout": fanout, "rate": delivered / elapsed}


def run_stream(args, client, plain, base, receiver, receiver_base, deaths):  # type: ignore[no-untyped-def]
    subscribe(client, base, f"{receiver_base}/stream/notify", "Death", args.stream_subscribers)
    time.sleep(1.0)
    before = len(receiver.notifies())
    sent: dict[str, float] = {}
    ingest: list[float] = []
    pool = deaths * (1 + args.stream // max(1, len(deaths)))
    t_start = time.monotonic()
    for i, bundle in enumerate(pool[: args.stream]):
        # each event must be new to the bridge: a fresh record id, and fresh people (the
        # same few deceased dying again and again would make every event re-read all the
        # earlier records of its person, which is no stream OpenCRVS sends)
        bundle = msgspec.json.decode(msgspec.json.encode(bundle))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                for identifier in resource.get("identifier", []):
                    identifier["value"] = f"{identifier['value'][:-6]}{i:06d}"
            if resource["resourceType"] == "Composition":
                old = resource["id"]
                resource["id"] = f"{old[:-8]}{i:08d}"
            if resource["resourceType"] == "Task":
                resource["focus"]["reference"] = f"Composition/{old[:-8]}{i:08d}"
        t0 = time.monotonic()
        response = post_webhook(plain, base, webhook_body(bundle))
        ingest.append(time.monotonic() - t0)
        assert response.status_code == 202, response.text
        sent[f"{old[:-8]}{i:08d}"] = t0
    total = len(sent) * args.stream_subscribers
    wait_count(receiver, before + total, timeout_s=120)
    got = receiver.notifies()[before:]
    elapsed = max(got) - t_start
    return {"ingest": ingest, "count": len(got), "rate": len(got) / elapsed, "elapsed": elapsed}


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def print_report(args, fan, stream) -> None:  # type: ignore[no-untyped-def]
    ingest = fan["ingest"] + stream["ingest"]
    print(f"webhook ingest (POST -> 202), {len(ingest)} posts:")
    print(f"  p50 {ms(statistics.median(ingest))}  p99 {ms(pct(ingest, 0.99))}  (target <= 50 ms)")
    print(f"one event -> {args.subscribers} subscribers, {len(fan['fanout'])} events:")
    print(
        f"  webhook-to-last-delivered p50 {ms(statistics.median(fan['fanout']))}"
        f"  p95 {ms(pct(fan['fanout'], 0.95))}  (target p95 <= 1 s)"
    )
    print(f"  deliveries/s {fan['rate']:.0f}")
    print(f"stream: {args.stream} events -> {args.stream_subscribers} subscribers:")
    print(
        f"  {stream['count']} notifies in {stream['elapsed']:.2f} s,"
        f" deliveries/s {stream['rate']:.0f}"
    )


if __name__ == "__main__":
    main()
