"""A/B of two checkouts: the bridge's CPU per signed search, many short alternating pairs.

`bench/upstream_search.py --compare` gives the full picture (latencies, both simulator
latencies, RSS) in a few rounds; on a noisy machine a difference of a few percent needs
more samples. This bench starts one OpenCRVS simulator (latency 0) and two bridges (1
worker each, the settings of `upstream_search.py`, each on a store migrated by its own
code), then runs wrk at `--connections` against A and B in turn, `--pairs` times (the order
swapping every pair), and prints each pair's CPU per search (process CPU seconds / requests
served) and the median ratio A/B. `--pin` puts both bridges on CPU 0 and the simulator and
wrk on CPU 1. Needs wrk.

    python bench/upstream_ab.py A_DIR B_DIR [--pairs 8] [--seconds 5] [--connections 16]
        [--pin]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sync_search import DATA, fetch_token, signed_bodies, wait_port  # noqa: E402
from bench.upstream_search import (  # noqa: E402
    brns,
    cpu_seconds,
    start_bridge,
    start_simulator,
    wrk,
)


@dataclass
class Side:
    label: str
    proc: subprocess.Popen[bytes]
    port: int
    key: object
    secret: str
    token: str = ""


def _pin(pid: int, cpus: set[int]) -> None:
    for task in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(task), cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    from dci_bridge.cli._common import DEMO_SEED

    DATA.mkdir(parents=True, exist_ok=True)
    id_file = DATA / "upstream-brn.txt"
    id_file.write_text("\n".join(brns(5000, DEMO_SEED)) + "\n")
    sim, sim_url = start_simulator(5000)
    sides: list[Side] = []
    try:
        for label, code in (("A", args.a.resolve()), ("B", args.b.resolve())):
            tag = f"ab-{label}-{os.getpid()}-{time.time_ns()}"
            store = DATA / f"upstream-bridge-{tag}.sqlite3"
            subprocess.run(  # the schema of this side's own code
                [
                    sys.executable,
                    "-c",
                    f"from dci_bridge.db.engine import migrate; migrate({f'sqlite:///{store}'!r})",
                ],
                env={**os.environ, "PYTHONPATH": str(code)},
                cwd=code,
                check=True,
            )
            proc, port, key, secret = start_bridge(tag, code, sim_url, True)
            sides.append(Side(label, proc, port, key, secret))
        wait_port(int(sim_url.rsplit(":", 1)[1]), 300)
        for side in sides:
            wait_port(side.port, 120)
            side.token = fetch_token(side.port, side.secret)
        if args.pin:
            _pin(sim.pid, {1})
            for side in sides:
                _pin(side.proc.pid, {0})
            os.sched_setaffinity(0, {1})  # this process, and the wrk it starts

        def run(side: Side, seconds: int, connections: int) -> float:
            bodies = signed_bodies(
                side.key, id_file, seconds * 4000, f"{side.label}{time.time_ns()}"
            )
            before = cpu_seconds(side.proc.pid)
            result = wrk(
                f"http://127.0.0.1:{side.port}/registry/sync/search",
                seconds,
                connections,
                ROOT / "bench" / "signed.lua",
                {"BENCH_BODIES": str(bodies), "BENCH_TOKEN": side.token},
            )
            if result["errors"]:
                sys.exit(f"{side.label}: {result['errors']:.0f} non-2xx answers: not searches")
            return 1000 * (cpu_seconds(side.proc.pid) - before) / result["requests"]

        for side in sides:
            run(side, 2, 4)  # warm up
        figures: dict[str, list[float]] = {"A": [], "B": []}
        ratios = []
        for pair in range(args.pairs):
            order = sides if pair % 2 == 0 else sides[::-1]
            got = {side.label: run(side, args.seconds, args.connections) for side in order}
            figures["A"].append(got["A"])
            figures["B"].append(got["B"])
            ratios.append(got["A"] / got["B"])
            print(f"pair {pair}: A {got['A']:.3f} ms, B {got['B']:.3f} ms, A/B {ratios[-1]:.3f}")
        print(
            f"CPU per signed search at c={args.connections}: A median "
            f"{statistics.median(figures['A']):.3f} ms, B median "
            f"{statistics.median(figures['B']):.3f} ms; A/B median {statistics.median(ratios):.3f}"
            f" ({min(ratios):.3f}-{max(ratios):.3f})"
        )
    finally:
        for side in sides:
            side.proc.terminate()
            side.proc.wait(timeout=30)
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()
