"""Async search and callback delivery, measured on loopback (figures: docs/benchmarks.md).

    .venv/bin/python bench/async_search.py [--rate 200] [--seconds 10] [--persons 2000]

1. transport: CPU per callback POST of the shared client, httpx's own transport vs the
   httpx-aiohttp transport (if installed), same receiver, 32 concurrent requests.
2. worker: the most signed callbacks per second one worker process delivers (SQLite outbox,
   the bridge's signer and guarded sender, a loopback receiver in another process).
3. async search: `dci-bridge serve` (one worker process) at a fixed offered load of async
   searches; Ack latency p50/p99 and enqueue-to-callback p50/p95/p99 (Ack received to
   on-search received by a loopback receiver in another process).
Everything runs on this machine: the receiver and the load generator share its cores with
the bridge, so the figures are lower bounds. Numbers vary with the machine's other load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def start_receiver(arrivals: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    script = str(ROOT / "bench" / "loopback_receiver.py")
    proc = subprocess.Popen([sys.executable, script, str(port), str(arrivals)])
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


# --- 1. transports ---------------------------------------------------------------------


async def _post_many(client: httpx.AsyncClient, url: str, count: int, concurrency: int) -> None:
    body = b'{"header":{},"message":{}}' * 20
    queue = iter(range(count))

    async def one() -> None:
        for _ in queue:
            response = await client.post(url, content=body)
            assert response.status_code == 200

    await asyncio.gather(*(one() for _ in range(concurrency)))


def transports(base: str, count: int) -> dict[str, float]:
    """CPU per POST: httpx's own transport, httpx over `httpx-aiohttp` (if installed; the
    bridge's sender until session 4), and the bridge's `CallbackSender` (aiohttp)."""
    from dci_bridge.delivery.sender import CallbackSender

    results: dict[str, float] = {}
    body = b'{"header":{},"message":{}}' * 20

    async def sender_run() -> float:
        sender = CallbackSender(allow_private=True, max_connections=64)
        queue = iter(range(count))

        async def one(urls: Any) -> None:
            for _ in urls:
                assert (await sender.post(base + "/cb", body)).ok

        try:
            await asyncio.gather(*(one(range(200 // 32 + 1)) for _ in range(32)))
            cpu = time.process_time()
            await asyncio.gather(*(one(queue) for _ in range(32)))
            return (time.process_time() - cpu) / count * 1000
        finally:
            await sender.aclose()

    kinds = ["httpx"]
    try:
        import httpx_aiohttp  # noqa: F401

        kinds.append("httpx-aiohttp")
    except ImportError:
        pass
    for kind in kinds:

        async def run(kind: str = kind) -> float:
            if kind == "httpx":
                client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))
            else:
                from httpx_aiohttp import HttpxAiohttpClient

                client = HttpxAiohttpClient(limits=httpx.Limits(max_connections=64))
            async with client:
                await _post_many(client, base + "/warm", 200, 32)
                cpu = time.process_time()
                await _post_many(client, base + "/cb", count, 32)
                return (time.process_time() - cpu) / count * 1000

        results[kind] = asyncio.run(run())
    results["bridge sender"] = asyncio.run(sender_run())
    return results


# --- 2. worker throughput --------------------------------------------------------------


def worker_throughput(base: str, count: int, workdir: Path) -> tuple[float, float]:
    from dci_bridge.clock import SystemClock
    from dci_bridge.crypto import EnvelopeSigner, KeyStore
    from dci_bridge.db.engine import begin_write, create_sync_engine, migrate
    from dci_bridge.delivery import outbox
    from dci_bridge.delivery.outbox import NewJob
    from dci_bridge.delivery.worker import Worker
    from dci_bridge.settings import DeliverySettings

    url = f"sqlite:///{workdir / 'outbox.sqlite3'}"
    migrate(url)
    engine = create_sync_engine(url)
    clock = SystemClock()
    signer = EnvelopeSigner(KeyStore(workdir / "keys"), sender_id="bench", clock=clock)
    header = {
        "version": "1.0.0",
        "message_ts": "2026-11-23T10:00:00.000Z",
        "action": "on-search",
        "status": "succ",
        "total_count": 1,
        "completed_count": 1,
    }
    message = json.dumps(
        {"transaction_id": "t", "correlation_id": "c", "search_response": [{"x": "y" * 800}]}
    ).encode()
    jobs = [
        NewJob(
            kind="on-search",
            header=json.dumps({**header, "message_id": f"m-{n}"}).encode(),
            message=message,
            target_url=base + "/registry/on-search",
            message_id=f"m-{n}",
        )
        for n in range(count)
    ]
    with begin_write(engine) as conn:
        outbox.enqueue(conn, jobs, now=clock.now())
    settings = DeliverySettings(allow_private_addresses=True, batch_size=200, max_in_flight=256)

    async def run() -> tuple[float, float]:
        worker = Worker(engine, settings, clock=clock, signer=signer)
        started = time.perf_counter()
        cpu = time.process_time()
        try:
            await worker.run_until_idle(timeout_s=600)
        finally:
            await worker.aclose()
        return time.perf_counter() - started, time.process_time() - cpu

    elapsed, cpu = asyncio.run(run())
    with engine.connect() as conn:
        counts = outbox.count_by_state(conn)
    engine.dispose()
    assert counts == {"done": count}, counts
    return count / elapsed, cpu / count * 1000


# --- 3. async search under load --------------------------------------------------------


def start_bridge(
    workdir: Path, db_url: str, receiver: str, workers: int = 1
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCI_BRIDGE_")} | {
        "DCI_BRIDGE_DATA_DIR": str(workdir),
        "DCI_BRIDGE_DATABASE__URL": db_url,
        "DCI_BRIDGE_DELIVERY__ALLOW_PRIVATE_ADDRESSES": "true",
        "DCI_BRIDGE_DELIVERY__CALLBACK_PREFIXES": receiver + "/",
        "DCI_BRIDGE_LOG__LEVEL": "warning",
        "DCI_BRIDGE_AUDIT__ENABLED": "false",
        "DCI_BRIDGE_SECURITY__ENABLED": "false",
        # without message security there is no authenticated sender to hold a policy
        "DCI_BRIDGE_POLICY__ENFORCE": "false",
    }
    env = _filter_settings(env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dci_bridge",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
    )
    wait_port(port, 120)
    return proc, f"http://127.0.0.1:{port}"


def _filter_settings(env: dict[str, str]) -> dict[str, str]:
    from dci_bridge.settings import Settings, SettingsError

    keep = dict(env)
    for key in list(keep):
        if key.startswith("DCI_BRIDGE_"):
            try:
                Settings.from_env({key: keep[key]})
            except SettingsError:
                del keep[key]
    return keep


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def async_load(base: str, receiver: str, arrivals: Path, rate: float, seconds: float, brn: str):
    count = int(rate * seconds)
    acks: dict[str, float] = {}
    ack_ms: list[float] = []

    def body() -> bytes:
        return json.dumps(
            {
                "header": {
                    "version": "1.0.0",
                    "message_id": str(uuid.uuid4()),
                    "message_ts": "2026-11-23T10:00:00Z",
                    "action": "search",
                    "sender_id": "bench.example.org",
                    "sender_uri": receiver + "/registry/on-search",
                    "total_count": 1,
                },
                "message": {
                    "transaction_id": str(uuid.uuid4()),
                    "search_request": [
                        {
                            "reference_id": "r-1",
                            "timestamp": "2026-11-23T10:00:00Z",
                            "search_criteria": {
                                "query_type": "idtype-value",
                                "query": {"type": "BRN", "value": brn},
                            },
                        }
                    ],
                },
            }
        ).encode()

    async def run() -> None:
        import aiohttp  # the cheapest client here: the load generator shares the cores

        headers = {"Content-Type": "application/json"}
        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=30)
        )

        async def one() -> None:
            started = time.perf_counter()
            async with client.post(base + "/registry/search", data=body(), headers=headers) as r:
                answer = await r.read()
            took = (time.perf_counter() - started) * 1000
            assert r.status == 200, answer[:200]
            acks[json.loads(answer)["message"]["correlation_id"]] = time.time()
            ack_ms.append(took)

        async with client:
            for _ in range(20):
                await one()
            acks.clear()
            ack_ms.clear()
            tasks = []
            start = time.perf_counter()
            for n in range(count):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)

    asyncio.run(run())
    deadline = time.monotonic() + 120
    arrived: dict[str, float] = {}
    while time.monotonic() < deadline:
        arrived = {}
        for line in arrivals.read_text().splitlines():
            at, _, action, corr, _ = line.split()
            if action == "on-search":
                arrived.setdefault(corr, float(at))
        if all(c in arrived for c in acks):
            break
        time.sleep(0.2)
    lag = [(arrived[c] - acks[c]) * 1000 for c in acks if c in arrived]
    return ack_ms, lag, len(acks), sum(1 for c in acks if c in arrived)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--transport-requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1, help="serve worker processes (part 3)")
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 3")
    args = parser.parse_args()
    parts = {int(p) for p in args.parts.split(",") if p}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    workdir = Path(tempfile.mkdtemp(prefix="dci-bench-async-"))
    arrivals = workdir / "arrivals.txt"
    arrivals.write_text("")
    receiver, receiver_url = start_receiver(arrivals)
    procs = [receiver]
    try:
        if 1 in parts:
            posts = args.transport_requests
            print(f"1. callback client CPU per POST (32 concurrent, {posts} POSTs)")
            costs = transports(receiver_url, args.transport_requests)
            for kind, ms in costs.items():
                print(f"   {kind:<14} {ms:.3f} ms CPU/request")
            for kind in costs:
                if kind != "httpx":
                    print(f"   ratio {kind} / httpx: {costs[kind] / costs['httpx']:.2f}")
        if 2 in parts:
            print(f"2. worker: {args.callbacks} signed callbacks from a SQLite outbox")
            rate, cpu_ms = worker_throughput(receiver_url, args.callbacks, workdir)
            print(f"   {rate:.0f} callbacks/s, {cpu_ms:.2f} ms CPU per callback (worker process)")
        if 3 not in parts:
            return

        from dci_bridge.records.seed import known_persons, seed_store

        db = workdir / "store.sqlite3"
        asyncio.run(seed_store(f"sqlite:///{db}", persons=args.persons, seed=20261123))
        brn = known_persons(20261123).child_brn
        bridge, bridge_url = start_bridge(workdir, f"sqlite:///{db}", receiver_url, args.workers)
        procs.append(bridge)
        print(
            f"3. async search at {args.rate:.0f}/s for {args.seconds:.0f} s"
            f" ({args.workers} serve worker{'s' if args.workers > 1 else ''})"
        )
        profile = os.environ.get("BENCH_PYSPY")  # a file: sample the bridge with py-spy
        if profile:
            spy_args = ["--nonblocking", "--gil", "-r", "100", "-f", "raw", "-o", profile]
            spy_args += ["-d", str(int(args.seconds)), "-p", str(bridge.pid)]
            spy = subprocess.Popen(["py-spy", "record", *spy_args])
        cpu_before = cpu_seconds(bridge.pid)
        ack_ms, lag, sent, got = async_load(
            bridge_url, receiver_url, arrivals, args.rate, args.seconds, brn
        )
        cpu_ms = (cpu_seconds(bridge.pid) - cpu_before) / max(sent + 20, 1) * 1000
        print(
            f"   ack        p50 {pct(ack_ms, 50):.1f} ms  p99 {pct(ack_ms, 99):.1f} ms"
            f"  (mean {statistics.fmean(ack_ms):.1f} ms, {sent} searches)"
        )
        print(
            f"   callback   p50 {pct(lag, 50):.0f} ms  p95 {pct(lag, 95):.0f} ms"
            f"  p99 {pct(lag, 99):.0f} ms  ({got}/{sent} delivered)"
        )
        print(f"   serve CPU  {cpu_ms:.2f} ms per async search (accept, search, sign, POST)")
        if profile:
            spy.wait(60)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
