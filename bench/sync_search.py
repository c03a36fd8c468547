"""Sync search throughput: the bridge vs a bare Litestar endpoint, side by side in one run.

Three servers under the same production settings (uvicorn, one worker each): the bare
endpoint, the bridge with message security off (`DCI_BRIDGE_SECURITY__ENABLED=false`: no
token, no signature, no replay guard) and the bridge as deployed (bearer token, Ed25519
request signature verified, replay guard write, response signed). wrk loads them from a
second process over loopback with 16 connections, alternating rounds so machine noise hits
all. The signed requests are signed beforehand (wrk cannot sign), each with its own
message_id. The bench sender has a restrictive disclosure policy (cash-transfer fields: BRN,
birth date, parents' identifiers); a fourth server, signed with policies off
(`DCI_BRIDGE_POLICY__ENFORCE=false`), gives the policy's cost as the ratio of the two signed
runs, and the policy's work per request is also timed in process. Prints requests/s, p50 and
p99 and the ratios. Needs `wrk` (Debian package).

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


def run_wrk(
    port: int,
    seconds: int,
    connections: int,
    ids: Path,
    *,
    script: str = "search.lua",
    extra_env: dict[str, str] | None = None,
) -> dict[str, float]:
    env = {**os.environ, "BENCH_IDS": str(ids), **(extra_env or {})}
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / script),
            f"http://127.0.0.1:{port}/registry/sync/search",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return parse_wrk(out.stdout)


SENDER = "bench.example.org"


def register_client(store: Path) -> tuple[object, str]:
    """The benchmark's DCI client (Ed25519 key), registered in the store; returns its signing
    key and client secret."""
    from dci_bridge.clock import SystemClock
    from dci_bridge.crypto.jwk import generate_signing_key
    from dci_bridge.db.engine import migrate
    from dci_bridge.registry.senders import SenderRegistry

    url = f"sqlite:///{store}"
    migrate(url)
    key = generate_signing_key("EdDSA", clock=SystemClock())
    jwks = {"keys": [dict(key.public.jwk)]}
    registry = SenderRegistry.from_url(url)
    try:
        if registry.get(SENDER) is None:
            _, secret = registry.register(SENDER, jwks=jwks)
        else:
            registry.update(SENDER, jwks=jwks, enabled=True)
            secret = registry.rotate_secret(SENDER)
    finally:
        registry.close()
    return key, secret


def fetch_token(port: int, secret: str) -> str:
    import httpx

    response = httpx.post(
        f"http://127.0.0.1:{port}/oauth2/client/token",
        data={"grant_type": "client_credentials", "client_id": SENDER, "client_secret": secret},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def signed_bodies(key: object, ids: Path, count: int, tag: str) -> Path:
    """`count` signed search requests, one per line, each with a fresh message_id."""
    import datetime as dt

    import msgspec

    from dci_bridge.clock import isoformat_z
    from dci_bridge.crypto import sign_envelope

    values = ids.read_text().split()
    now = isoformat_z(dt.datetime.now(dt.UTC))
    target = DATA / f"signed-{tag}.txt"
    encode = msgspec.json.encode
    with target.open("wb") as out:
        for n in range(count):
            header = encode(
                {
                    "version": "1.0.0",
                    "message_id": f"b-{tag}-{n}",
                    "message_ts": now,
                    "action": "search",
                    "sender_id": SENDER,
                    "total_count": 1,
                }
            )
            message = encode(
                {
                    "transaction_id": "t",
                    "search_request": [
                        {
                            "reference_id": "r",
                            "timestamp": now,
                            "search_criteria": {
                                "reg_type": "ns:org:RegistryType:Civil",
                                "query_type": "idtype-value",
                                "query": {"type": "BRN", "value": values[n % len(values)]},
                            },
                        }
                    ],
                }
            )
            signature = sign_envelope(header, message, key, "jws")  # type: ignore[arg-type]
            out.write(b'{"signature":' + encode(signature) + b',"header":' + header)
            out.write(b',"message":' + message + b"}\n")
    return target


BENCH_POLICY = {
    "description": "bench: cash-transfer fields, no rate limit in practice",
    "query_types": ["idtype-value"],
    "identifier_types": ["BRN"],
    "event_types": ["*"],
    "fields": ["identifier[BRN]", "birth_date", "parent1_identifier", "parent2_identifier"],
    "max_page_size": 10,
    "requests_per_minute": 1_000_000_000,
}


def set_policy(store: Path) -> None:
    from dci_bridge.db.engine import migrate
    from dci_bridge.registry.policy import parse_policy
    from dci_bridge.registry.policy_store import PolicyStore

    url = f"sqlite:///{store}"
    migrate(url)
    policies = PolicyStore.from_url(url)
    try:
        policies.set(SENDER, parse_policy(BENCH_POLICY))
    finally:
        policies.close()


def policy_cost_us(store: Path) -> float:
    """In-process cost of what the policy adds to one BRN look-up (the consent, query and
    restrict checks and the projection of one real record), in microseconds: a direct
    measurement, immune to the HTTP run's noise."""
    import datetime as dt
    import timeit

    import msgspec

    from dci_bridge.protocol.codes import IdentifierType, QueryType
    from dci_bridge.records.query import IdentifierLookup, RecordQuery
    from dci_bridge.registry.policy import compile_policy, parse_policy

    with sqlite3.connect(store) as conn:
        rows = [r[0] for r in conn.execute("SELECT dci_json FROM person LIMIT 2000")]
    policy = compile_policy(SENDER, parse_policy(BENCH_POLICY))
    records = [msgspec.Raw(bytes(r)) for r in rows]
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    query = RecordQuery(where=IdentifierLookup(IdentifierType.BRN, ("x",)))
    state = {"i": 0}

    def one() -> None:
        state["i"] = (state["i"] + 1) % len(records)
        policy.check_consent(None, None, now)
        policy.check_registry_type("ns:org:RegistryType:Civil")
        policy.check_query_type(QueryType.IDTYPE_VALUE)
        policy.page_sizes(10, 100)
        policy.restrict(query)
        policy.minimise_all([records[state["i"]]], today)

    number = 20_000
    return min(timeit.repeat(one, number=number, repeat=5)) / number * 1e6


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--max-rps", type=int, default=4000, help="signed bodies prepared per second of a run"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    store = ensure_store(args.persons)
    ids = write_ids(store)
    key, secret = register_client(store)
    set_policy(store)
    bridge_port, signed_port, bare_port = free_port(), free_port(), free_port()
    open_port = free_port()
    env = {**os.environ, "DCI_BRIDGE_DATABASE__URL": f"sqlite:///{store}"}
    python = sys.executable
    serve = [python, "-m", "dci_bridge", "serve", "--workers", "1", "--port"]
    signed_env = {
        **env,
        "DCI_BRIDGE_DATA_DIR": str(DATA / "bridge-data"),
        "DCI_BRIDGE_SECURITY__TOKEN_TTL_S": "3600",
        "DCI_BRIDGE_LOG__LEVEL": "warning",
    }
    unsigned_env = {
        **signed_env,
        "DCI_BRIDGE_SECURITY__ENABLED": "false",
        "DCI_BRIDGE_DATABASE__MIGRATE_ON_START": "false",
    }
    procs = [start([*serve, str(signed_port)], signed_env)]
    try:
        wait_port(signed_port)  # migrated: the second bridge need not
        procs.append(start([*serve, str(bridge_port)], unsigned_env))
        open_env = {
            **signed_env,
            "DCI_BRIDGE_POLICY__ENFORCE": "false",
            "DCI_BRIDGE_DATABASE__MIGRATE_ON_START": "false",
        }
        procs.append(start([*serve, str(open_port)], open_env))
        procs.append(
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
            )
        )
        wait_port(bridge_port)
        wait_port(bare_port)
        wait_port(open_port)
        tokens = {port: fetch_token(port, secret) for port in (signed_port, open_port)}

        def signed_run(seconds: int, tag: str, port: int = signed_port) -> dict[str, float]:
            bodies = signed_bodies(key, ids, seconds * args.max_rps, f"{tag}-{port}")
            extra = {"BENCH_BODIES": str(bodies), "BENCH_TOKEN": tokens[port]}
            return run_wrk(
                port, seconds, args.connections, ids, script="signed.lua", extra_env=extra
            )

        for port in (bridge_port, bare_port):  # warm up
            run_wrk(port, 2, args.connections, ids)
        signed_run(2, f"warm-{os.getpid()}")
        signed_run(2, f"warm-{os.getpid()}", open_port)
        results: dict[str, list[dict[str, float]]] = {
            "bare": [],
            "bridge": [],
            "signed": [],
            "open": [],
        }
        for n in range(args.rounds):
            results["bare"].append(run_wrk(bare_port, args.seconds, args.connections, ids))
            results["bridge"].append(run_wrk(bridge_port, args.seconds, args.connections, ids))
            results["open"].append(signed_run(args.seconds, f"{os.getpid()}-{n}", open_port))
            results["signed"].append(signed_run(args.seconds, f"{os.getpid()}-{n}"))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)

    def best(name: str) -> dict[str, float]:
        return max(results[name], key=lambda r: r["rps"])

    bare, bridge, signed, open_ = best("bare"), best("bridge"), best("signed"), best("open")
    print(
        f"\nsync search, {args.persons} persons, SQLite, {args.connections} connections, "
        f"best of {args.rounds} x {args.seconds}s rounds"
    )
    print(f"{'endpoint':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    rows = (
        ("bare Litestar (fixed JSON)", bare),
        ("bridge, security off", bridge),
        ("signed, policies off", open_),
        ("bridge, token + Ed25519 signed", signed),
    )
    for label, r in rows:
        print(f"{label:<34}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>10.0f}")
    print(f"ratio bridge/bare: {bridge['rps'] / bare['rps']:.2f}  (target >= 0.30, p99 <= 30 ms)")
    print(f"ratio signed/unsigned: {signed['rps'] / bridge['rps']:.2f}")
    print(f"ratio signed/bare: {signed['rps'] / bare['rps']:.2f}  (target >= 0.12)")
    print(
        f"ratio signed with policy / signed without: {signed['rps'] / open_['rps']:.3f}"
        "  (target >= 0.95: applying the policy costs <= 5%)"
    )
    cost = policy_cost_us(store)
    print(
        f"policy work per request, timed in process: {cost:.1f} us"
        f" = {cost / (1e6 / signed['rps']) * 100:.2f}% of a signed request at"
        f" {signed['rps']:.0f} req/s"
    )


if __name__ == "__main__":
    main()
