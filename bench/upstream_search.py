"""Sync search through the bridge to the OpenCRVS simulator vs direct calls to the simulator.

One simulator process (`dci-bridge simulator`, OpenCRVS v1.x) and one bridge (`dci-bridge
serve`, 1 worker, `upstream.source=opencrvs`) on loopback. For simulator latency 0 ms and
5 ms (switched at run time), wrk measures side by side:
- direct: the two GraphQL calls the bridge makes per BRN search (`searchEvents` by
  registration number, `fetchRegistration` of the hit), each alone at 1 connection;
- bridge: DCI sync searches by BRN at 1 connection (latency) and 16 connections (load).
Added latency (p50) = bridge p50 - (search p50 + fetch p50) at 1 connection. The bridge's own
CPU per request = its process CPU seconds (utime + stime from /proc) while wrk runs /
requests served: under load (median over rounds), and at 1 connection (each request handled
alone; the minimum over rounds, the figure least disturbed by other processes). The last
line gives the machine's wake-up cost (`wakeup_ratio`), which the c=1 rows at 5 ms carry.
RSS is read after the load. Signed runs give the bench sender the sync-search bench's BRN
disclosure policy (without one every search is refused); `--no-signed` turns security and
policies off. Rows with non-2xx answers are flagged: they do not measure searches.

`--compare DIR` runs a second bridge from another checkout (e.g. `git archive <commit> | tar
-x -C DIR`) in the same run, alternating with this one round by round, and prints both
bridges' figures and their ratio. Needs `wrk`.

    python bench/upstream_search.py [--persons 5000] [--seconds 8] [--rounds 3]
        [--no-signed] [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sync_search import (  # noqa: E402
    DATA,
    fetch_token,
    free_port,
    parse_wrk,
    register_client,
    set_policy,
    signed_bodies,
    wait_port,
)
from tests.simulators import simulator_token  # noqa: E402

GRAPHQL_LUA = """
local body = os.getenv("BENCH_BODY")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
request = function() return wrk.format(nil, nil, nil, body) end
"""


def brns(persons: int, seed: int) -> list[str]:
    from dci_bridge.records.fhir_map import map_bundle
    from dci_bridge.records.seed import generate_bundles

    found = []
    for bundle in generate_bundles(persons, seed):
        record = map_bundle(bundle)
        if record.event.value == "birth" and record.registration_number:
            found.append(record.registration_number)
    return found[:5000]


def wrk(url: str, seconds: int, connections: int, script: Path, env: dict[str, str]) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    result = parse_wrk(out.stdout)
    requests = out.stdout.split(" requests in ")[0].split()[-1]
    result["requests"] = float(requests)
    return result


def start_simulator(persons: int) -> tuple[subprocess.Popen[bytes], str]:
    """The OpenCRVS simulator (v1.x, `persons` seeded) in its own process on a free
    loopback port, its daily search quota out of reach; returns it and its URL."""
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "dci_bridge", "simulator", "--port", str(port)]  # noqa: RUF005
        + ["--persons", str(persons), "--daily-quota", str(10**9)],
        stdout=subprocess.DEVNULL,
    )
    return sim, f"http://127.0.0.1:{port}"


def wakeup_ratio(gap_s: float = 0.005, units: int = 300) -> float:
    """CPU time of a fixed piece of Python work (JSON round trip and SHA-512 of a 2 kB
    document) done right after a `gap_s` sleep, divided by the same work back to back.

    On a virtual machine a thread that wakes from a few milliseconds of idleness finds cold
    caches (and a host that may have run others on its core): the same instructions take
    more CPU time. A bridge at 1 connection with a 5 ms simulator sleeps twice per search,
    so its c=1 CPU per search at sim 5 ms carries this ratio; the loaded rows do not."""
    import hashlib
    import time

    document = json.dumps({"values": list(range(300)), "text": "x" * 600})

    def unit() -> None:
        for _ in range(12):
            text = json.dumps(json.loads(document))
            hashlib.sha512(text.encode()).digest()

    def cost(gap: float) -> float:
        start = time.thread_time()
        for _ in range(units):
            unit()
            if gap:
                time.sleep(gap)
        return time.thread_time() - start

    cost(0)  # warm
    return min(cost(gap_s) for _ in range(2)) / min(cost(0) for _ in range(2))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Bridge:
    """One bridge process under test (this checkout, or `--compare`'s)."""

    label: str
    code: Path
    proc: subprocess.Popen[bytes]
    port: int
    key: object
    secret: str
    token_env: dict[str, str]


def bridge_env(store: Path, sim_url: str, data_dir: Path, *, signed: bool) -> dict[str, str]:
    """The settings of a bench bridge over the simulator at `sim_url` (with the process's
    own environment under them): security and policies off when not `signed`."""
    from dci_bridge.upstream.simulator.config import SEARCH_CLIENT

    env = {
        **os.environ,
        "DCI_BRIDGE_DATABASE__URL": f"sqlite:///{store}",
        "DCI_BRIDGE_UPSTREAM__SOURCE": "opencrvs",
        "DCI_BRIDGE_UPSTREAM__AUTH_URL": sim_url,
        "DCI_BRIDGE_UPSTREAM__GATEWAY_URL": sim_url,
        "DCI_BRIDGE_UPSTREAM__CLIENT_ID": SEARCH_CLIENT.client_id,
        "DCI_BRIDGE_UPSTREAM__CLIENT_SECRET": SEARCH_CLIENT.client_secret,
        "DCI_BRIDGE_LOG__LEVEL": "warning",
        "DCI_BRIDGE_DATA_DIR": str(data_dir),
        "DCI_BRIDGE_SECURITY__TOKEN_TTL_S": "3600",
    }
    if not signed:  # no authenticated sender: nobody to hold a disclosure policy
        env["DCI_BRIDGE_SECURITY__ENABLED"] = "false"
        env["DCI_BRIDGE_POLICY__ENFORCE"] = "false"
    return env


def start_bridge(
    label: str, code: Path, sim_url: str, signed: bool
) -> tuple[subprocess.Popen[bytes], int, object, str]:
    """A bridge (1 worker) on its own store, running the code of `code`; returns the
    process, its port, and the bench client's signing key and secret."""
    store = DATA / f"upstream-bridge-{label}.sqlite3"
    key, secret = register_client(store)  # wrk cannot sign: requests are signed beforehand
    set_policy(store)  # the sync-search bench's BRN policy (policies refuse senders without)
    port = free_port()
    env = bridge_env(store, sim_url, DATA / f"upstream-bridge-data-{label}", signed=signed)
    env["PYTHONPATH"] = str(code)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dci_bridge", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port, key, secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--signed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="token + Ed25519-signed requests (as clients send them); --no-signed: security off",
    )
    parser.add_argument(
        "--max-rps",
        type=int,
        default=4000,
        help="signed bodies prepared per second of a run (each is sent once: past them wrk"
        " replays bodies, and the replay guard answers 409)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds per simulator latency")
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout (e.g. a `git worktree` of an older commit): its bridge is "
        "measured in the same run, alternating with this one",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    from dci_bridge.cli._common import DEMO_SEED
    from dci_bridge.upstream.opencrvs.v1 import FETCH_REGISTRATION, SEARCH_EVENTS

    DATA.mkdir(parents=True, exist_ok=True)
    ids = brns(args.persons, DEMO_SEED)
    id_file = DATA / "upstream-brn.txt"
    id_file.write_text("\n".join(ids) + "\n")
    sim, sim_url = start_simulator(args.persons)
    sim_port = int(sim_url.rsplit(":", 1)[1])
    codes = [("this", ROOT)] + ([("compare", args.compare.resolve())] if args.compare else [])
    bridges: list[Bridge] = []
    rows = []
    try:
        for label, code in codes:
            proc, port, key, secret = start_bridge(label, code, sim_url, args.signed)
            bridges.append(Bridge(label, code, proc, port, key, secret, {}))
        wait_port(sim_port, 300)
        for bridge in bridges:
            wait_port(bridge.port, 120)
            if args.signed:
                bridge.token_env["BENCH_TOKEN"] = fetch_token(bridge.port, bridge.secret)
        token = simulator_token(sim_url)
        lua = DATA / "graphql.lua"
        lua.write_text(GRAPHQL_LUA)
        brn = ids[len(ids) // 2]
        search_body = json.dumps(
            {
                "operationName": "searchEvents",
                "query": SEARCH_EVENTS,
                "variables": {
                    "advancedSearchParameters": {
                        "registrationNumber": brn,
                        "event": "birth",
                        "registrationStatuses": ["REGISTERED", "CERTIFIED", "ISSUED"],
                    },
                    "count": 50,
                    "skip": 0,
                },
            }
        )
        hit = httpx.post(
            f"{sim_url}/graphql",
            content=search_body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ).json()["data"]["searchEvents"]["results"][0]["id"]
        fetch_body = json.dumps(
            {
                "operationName": "fetchRegistration",
                "query": FETCH_REGISTRATION,
                "variables": {"id": hit},
            }
        )
        runs = 0

        def bridge_run(bridge: Bridge, seconds: int, connections: int) -> tuple[dict, float]:
            """wrk against `bridge`; returns wrk's figures and the bridge's CPU seconds
            during wrk (signed bodies are made before: the idle bridge's ticks while they
            are signed are not the searches')."""
            nonlocal runs
            runs += 1
            url = f"http://127.0.0.1:{bridge.port}/registry/sync/search"
            if not args.signed:
                script, extra = ROOT / "bench" / "search.lua", {"BENCH_IDS": str(id_file)}
            else:
                tag = f"up-{os.getpid()}-{runs}"
                bodies = signed_bodies(bridge.key, id_file, seconds * args.max_rps, tag)
                script, extra = ROOT / "bench" / "signed.lua", {"BENCH_BODIES": str(bodies)}
            before = cpu_seconds(bridge.proc.pid)
            result = wrk(url, seconds, connections, script, {**extra, **bridge.token_env})
            return result, cpu_seconds(bridge.proc.pid) - before

        for bridge in bridges:
            bridge_run(bridge, 2, 4)  # warm up
        for latency in (0, 5):
            httpx.post(f"{sim_url}/_sim/faults", json={"latency_ms": latency})
            gql = f"{sim_url}/graphql"
            direct_search = wrk(
                gql, args.seconds, 1, lua, {"BENCH_BODY": search_body, "BENCH_TOKEN": token}
            )
            direct_fetch = wrk(
                gql, args.seconds, 1, lua, {"BENCH_BODY": fetch_body, "BENCH_TOKEN": token}
            )
            for round_ in range(args.rounds):
                order = bridges if (latency + round_) % 2 == 0 else bridges[::-1]
                for bridge in order:  # alternating who goes first
                    single, cpu1 = bridge_run(bridge, args.seconds, 1)
                    loaded, cpu = bridge_run(bridge, args.seconds, args.connections)
                    rows.append(
                        {
                            "bridge": bridge.label,
                            "latency": latency,
                            "direct_search_p50": direct_search["p50"],
                            "direct_fetch_p50": direct_fetch["p50"],
                            "bridge1_p50": single["p50"],
                            "bridge1_rps": single["rps"],
                            "added_p50": single["p50"] - direct_search["p50"] - direct_fetch["p50"],
                            "load_rps": loaded["rps"],
                            "load_p50": loaded["p50"],
                            "load_p99": loaded["p99"],
                            "errors": loaded["errors"] + single["errors"],
                            "cpu_ms": 1000 * cpu / max(loaded["requests"], 1),
                            "cpu1_ms": 1000 * cpu1 / max(single["requests"], 1),
                            "rss_mb": rss_mb(bridge.proc.pid),
                        }
                    )
    finally:
        for bridge in bridges:
            bridge.proc.terminate()
            bridge.proc.wait(timeout=30)
        sim.terminate()
        sim.wait(timeout=30)
    report(rows, args, bridges)
    print(
        "machine: the same Python work takes"
        f" {wakeup_ratio():.2f}x the CPU right after a 5 ms sleep as back to back"
        " (the c=1 CPU at sim 5 ms carries this; the loaded rows do not)"
    )


def report(rows: list[dict], args: argparse.Namespace, bridges: list[Bridge]) -> None:
    kind = "signed" if args.signed else "unsigned"
    print(f"\n{kind} BRN sync search via the bridge -> OpenCRVS simulator ({args.persons} persons)")
    for bridge in bridges:
        print(f"  {bridge.label}: {bridge.code}")
    print(
        f"{'bridge':<8}{'sim ms':>6}{'direct search p50':>19}{'direct fetch p50':>18}"
        f"{'bridge c=1 p50':>16}{'added p50':>11}{'c=1 rps':>9}"
        f"{f'c={args.connections} rps':>10}{'p50':>8}{'p99':>8}"
        f"{'CPU ms/req':>12}{'c=1 CPU':>9}{'RSS MB':>8}{'non-2xx':>9}"
    )
    for r in rows:
        print(
            f"{r['bridge']:<8}{r['latency']:>6}{r['direct_search_p50']:>19.2f}"
            f"{r['direct_fetch_p50']:>18.2f}{r['bridge1_p50']:>16.2f}{r['added_p50']:>11.2f}"
            f"{r['bridge1_rps']:>9.0f}{r['load_rps']:>10.0f}{r['load_p50']:>8.2f}"
            f"{r['load_p99']:>8.2f}{r['cpu_ms']:>12.2f}{r['cpu1_ms']:>9.2f}{r['rss_mb']:>8.0f}"
            f"{r['errors']:>9.0f}"
        )
    for latency in (0, 5):
        mine = {
            b.label: [r for r in rows if r["bridge"] == b.label and r["latency"] == latency]
            for b in bridges
        }
        cpu = {k: statistics.median(r["cpu_ms"] for r in v) for k, v in mine.items()}
        cpu1 = {k: min(r["cpu1_ms"] for r in v) for k, v in mine.items()}
        added = {k: statistics.median(r["added_p50"] for r in v) for k, v in mine.items()}
        print(
            f"sim {latency} ms, {args.rounds} round(s): "
            + ", ".join(
                f"{k} CPU/req c={args.connections} median {cpu[k]:.2f} ms,"
                f" c=1 min {cpu1[k]:.2f} ms, added p50 median {added[k]:.2f} ms"
                for k in mine
            )
        )
        if len(bridges) > 1:
            print(
                f"  this/compare: CPU/req c={args.connections} {cpu['this'] / cpu['compare']:.2f},"
                f" c=1 {cpu1['this'] / cpu1['compare']:.2f}"
            )
    if any(r["errors"] for r in rows):
        print(
            "WARNING: non-2xx answers: the figures of those rows do not measure searches"
            + (" (409s: raise --max-rps)" if args.signed else "")
        )
    print("targets: bridge CPU <= 1 ms/request, added p50 <= 5 ms, RSS <= 150 MB")


if __name__ == "__main__":
    main()
