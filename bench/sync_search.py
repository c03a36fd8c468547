"""Sync search throughput: the bridge vs a bare Litestar endpoint, side by side in one run.

Both run under the same production server settings (uvicorn, one worker); wrk loads them from
a second process over loopback with 16 connections, alternating rounds so machine noise hits
both. Prints requests/s, p50 and p99 for each and the ratio. Needs `wrk` (Debian package).

    python bench/sync_search.py [--persons 50000] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def ensure_store(persons: int) -> Path:
    from dci_bridge.records.seed import seed_store

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"store-{persons}.sqlite3"
    if not path.exists():
        print(f"seeding {persons} persons into {path} ...", flush=True)
        started = time.perf_counter()
        asyncio.run(seed_store(f"sqlite:///{path}", persons=persons))
        print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def write_ids(store: Path) -> Path:
    with sqlite3.connect(store) as conn:
        rows = conn.execute(
            "SELECT value FROM person_identifier WHERE id_type = 'BRN' ORDER BY value LIMIT 5000"
        ).fetchall()
    target = DATA / "brn.txt"
    target.write_text("\n".join(r[0] for r in rows) + "\n")
    return target


def parse_wrk(text: str) -> dict[str, float]:
    def latency_ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if not match:
            raise ValueError(f"no {label}% latency in wrk output:\n{text}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if not rps:
        raise ValueError(f"no Requests/sec in wrk output:\n{text}")
    return {
        "rps": float(rps.group(1)),
        "p50": latency_ms("50"),
        "p99": latency_ms("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def run_wrk(port: int, seconds: int, connections: int, ids: Path) -> dict[str, float]:
    env = {**os.environ, "BENCH_IDS": str(ids)}
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "search.lua"),
            f"http://127.0.0.1:{port}/registry/sync/search",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return parse_wrk(out.stdout)


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    store = ensure_store(args.persons)
    ids = write_ids(store)
    bridge_port, bare_port = free_port(), free_port()
    env = {**os.environ, "DCI_BRIDGE_DATABASE__URL": f"sqlite:///{store}"}
    python = sys.executable
    procs = [
        start(
            [python, "-m", "dci_bridge", "serve", "--port", str(bridge_port), "--workers", "1"], env
        ),
        start(
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "bench.bare_app:create",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            {**env, "PYTHONPATH": str(ROOT)},
        ),
    ]
    try:
        wait_port(bridge_port)
        wait_port(bare_port)
        for port in (bridge_port, bare_port):  # warm up
            run_wrk(port, 2, args.connections, ids)
        results: dict[str, list[dict[str, float]]] = {"bare": [], "bridge": []}
        for _ in range(args.rounds):
            results["bare"].append(run_wrk(bare_port, args.seconds, args.connections, ids))
            results["bridge"].append(run_wrk(bridge_port, args.seconds, args.connections, ids))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)

    def best(name: str) -> dict[str, float]:
        return max(results[name], key=lambda r: r["rps"])

    bare, bridge = best("bare"), best("bridge")
    print(
        f"\nsync search, {args.persons} persons, SQLite, {args.connections} connections, "
        f"best of {args.rounds} x {args.seconds}s rounds"
    )
    print(f"{'endpoint':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for label, r in (("bare Litestar (fixed JSON)", bare), ("bridge (BRN look-up)", bridge)):
        print(f"{label:<28}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>10.0f}")
    print(f"ratio bridge/bare: {bridge['rps'] / bare['rps']:.2f}  (target >= 0.30, p99 <= 30 ms)")


if __name__ == "__main__":
    main()
