"""User-space instructions per BRN search of a bridge over the OpenCRVS simulator (callgrind).

CPU seconds per request swing with the machine's load; instruction counts do not. The bridge
(`dci-bridge serve`, 1 worker, `upstream.source=opencrvs`, the code of CODE) runs under
`valgrind --tool=callgrind` with collection off; after 60 warm-up searches collection is
switched on, N sequential BRN searches are sent, and collection is switched off. Prints the
bridge's instructions per search (its background threads included, kernel time not).
Signed: token + Ed25519-signed requests and the bench BRN policy; unsigned: security and
policies off. A search answered 503 (an idle upstream connection closed while valgrind was
slow) is retried with a fresh message and reported. Takes ~5 min. Needs valgrind.

`LATENCY_MS` sets the simulator's answer latency (default 0). The same count at 0 and 5 ms
shows that a search does no more work when its upstream is slow: a higher CPU time per
search at 1 connection and 5 ms (bench/upstream_search.py) is then the machine's cost of
waking from idleness, not the bridge's.

    python bench/upstream_instructions.py CODE {signed,unsigned} [N] [LATENCY_MS]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sync_search import (  # noqa: E402
    DATA,
    fetch_token,
    free_port,
    register_client,
    set_policy,
    signed_bodies,
    wait_port,
)
from bench.upstream_search import bridge_env, brns  # noqa: E402

UNSIGNED = (
    '{"header":{"version":"1.0.0","message_id":"m-%d","message_ts":"2026-11-23T10:00:00Z",'
    '"action":"search","sender_id":"bench.example.org","total_count":1},"message":'
    '{"transaction_id":"t","search_request":[{"reference_id":"r","timestamp":'
    '"2026-11-23T10:00:00Z","search_criteria":{"reg_type":"ns:org:RegistryType:Civil",'
    '"query_type":"idtype-value","query":{"type":"BRN","value":"%s"}}}]}}'
)
WARM_UP = 60


def main() -> None:
    code, mode = Path(sys.argv[1]).resolve(), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    latency_ms = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    signed = mode == "signed"
    from dci_bridge.cli._common import DEMO_SEED

    out = DATA / "callgrind"
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{code.name}-{mode}-{os.getpid()}"
    ids = brns(5000, DEMO_SEED)
    sim_port, port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim = subprocess.Popen(
        [sys.executable, "-m", "dci_bridge", "simulator", "--port", str(sim_port)]  # noqa: RUF005
        + ["--persons", "5000", "--daily-quota", str(10**9)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = out / f"bridge-{tag}.sqlite3"
    key, secret = register_client(store)
    set_policy(store)
    env = bridge_env(store, sim_url, out / f"data-{tag}", signed=signed)
    env["PYTHONPATH"] = str(code)
    env["DCI_BRIDGE_UPSTREAM__TIMEOUT_S"] = "60"  # valgrind is slow
    result = out / f"callgrind-{tag}.out"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    serve = [sys.executable, "-m", "dci_bridge", "serve", "--port", str(port), "--workers", "1"]
    bridge = subprocess.Popen(
        [*valgrind, f"--callgrind-out-file={result}", *serve],
        env=env,
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    retried = 0
    try:
        wait_port(sim_port, 300)
        wait_port(port, 600)
        httpx.post(f"{sim_url}/_sim/faults", json={"latency_ms": latency_ms}).raise_for_status()
        url = f"http://127.0.0.1:{port}/registry/sync/search"
        headers = {"Content-Type": "application/json"}
        count = 3 * (n + WARM_UP)
        if signed:
            headers["Authorization"] = "Bearer " + fetch_token(port, secret)
            id_file = out / f"ids-{tag}.txt"
            id_file.write_text("\n".join(ids) + "\n")
            bodies = signed_bodies(key, id_file, count, tag).read_bytes().splitlines()
        else:
            bodies = [(UNSIGNED % (i, ids[i % len(ids)])).encode() for i in range(count)]
        feed = iter(bodies)

        def search(client: httpx.Client) -> None:
            nonlocal retried
            for _ in range(3):
                try:
                    answer = client.post(url, content=next(feed), headers=headers)
                except httpx.TransportError:
                    time.sleep(1)
                    continue
                if answer.status_code == 503:
                    retried += 1
                    continue
                assert answer.status_code == 200, answer.text[:300]
                items = answer.json()["message"]["search_response"]
                assert len(items[0]["data"]["reg_records"]) == 1
                return
            raise RuntimeError("the bridge did not answer")

        with httpx.Client(timeout=120) as client:
            for _ in range(WARM_UP):
                search(client)
            warm_retries = retried
            control = ["callgrind_control", "-i"]
            subprocess.run([*control, "on", str(bridge.pid)], check=True, capture_output=True)
            for _ in range(n):
                search(client)
            subprocess.run([*control, "off", str(bridge.pid)], check=True, capture_output=True)
    finally:
        bridge.send_signal(signal.SIGINT)
        try:
            bridge.wait(300)
        except subprocess.TimeoutExpired:
            bridge.kill()
        sim.terminate()
        sim.wait(30)
    total = next(  # the `totals:` line (the header's `summary:` may be 0)
        int(line.split()[1])
        for line in reversed(result.read_text().splitlines())
        if line.startswith("totals:")
    )
    print(
        json.dumps(
            {
                "code": str(code),
                "mode": mode,
                "searches": n,
                "simulator_latency_ms": latency_ms,
                "instructions_per_search": round(total / n),
                "retried_503_while_measuring": retried - warm_retries,
                "callgrind_file": str(result),
            }
        )
    )


if __name__ == "__main__":
    main()
