"""The bridge's own CPU per signed search through OpenCRVS, without sockets on the DCI side.

`bench/upstream_search.py` measures a served bridge under wrk: its figure includes uvicorn,
the kernel's socket work and the machine's noise (other processes share the two cores).
This bench calls the bridge's ASGI app in process (lifespan run as a server would), 16
searches at a time, against the OpenCRVS simulator in its own process, and reports the
process CPU seconds per search over N searches (after a warm-up; the background tasks'
work in the following 0.6 s is counted too). `--memo-upstream` answers each distinct
OpenCRVS call from the answer it got the first time (the HTTP exchange is skipped from
the second time on), so what is left is the bridge's own code: admission, the search,
mapping, audit, the signed answer. The bench sender signs with Ed25519 and has the
sync-search bench's BRN policy, as in `upstream_search.py`.

Side by side with another checkout: run it twice, once with `--code DIR` (e.g. `git archive
<commit> | tar -x -C DIR`), alternating.

    python bench/upstream_inprocess.py [--searches 2500] [--rounds 3] [--memo-upstream]
        [--unsigned] [--code DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--searches", type=int, default=2500, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--memo-upstream", action="store_true")
    parser.add_argument("--unsigned", action="store_true", help="security and policies off")
    parser.add_argument("--code", type=Path, help="the checkout whose bridge is measured")
    return parser.parse_args()


ARGS = _args()
sys.path.insert(0, str(ROOT))
if ARGS.code is not None:
    sys.path.insert(0, str(ARGS.code.resolve()))

from bench.sync_search import (  # noqa: E402
    DATA,
    SENDER,
    free_port,
    register_client,
    set_policy,
    signed_bodies,
    wait_port,
)
from bench.upstream_search import bridge_env, brns  # noqa: E402
from tests.servers import stop_process  # noqa: E402


def memoize_upstream() -> None:
    """Answer each distinct OpenCRVS request from its first answer."""
    from dci_bridge.upstream.opencrvs import http

    real = http.UpstreamHttp.request
    answers: dict[tuple[str, bytes | None], tuple[int, bytes]] = {}

    async def request(self: Any, method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
        key = (url, kwargs.get("body"))
        if key not in answers:
            answers[key] = await real(self, method, url, **kwargs)
        return answers[key]

    http.UpstreamHttp.request = request  # type: ignore[method-assign]


class Driver:
    """Calls an ASGI app in process: lifespan, and HTTP requests with a body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        started = await self._from_app.get()
        assert started["type"] == "lifespan.startup.complete", started

    async def stop(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        assert self._task is not None
        await self._task

    async def post(
        self, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, bytes]:
        """(status, body) of one POST."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect while the answer is made
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def unsigned_body(n: int, values: list[str]) -> bytes:
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    criteria = {
        "reg_type": "ns:org:RegistryType:Civil",
        "query_type": "idtype-value",
        "query": {"type": "BRN", "value": values[n % len(values)]},
    }
    envelope = {
        "header": {
            "version": "1.0.0",
            "message_id": f"u-{os.getpid()}-{n}",
            "message_ts": now,
            "action": "search",
            "sender_id": SENDER,
            "total_count": 1,
        },
        "message": {
            "transaction_id": "t",
            "search_request": [
                {"reference_id": "r", "timestamp": now, "search_criteria": criteria}
            ],
        },
    }
    return json.dumps(envelope).encode()


async def run(sim_url: str, store: Path, values: list[str], ids_file: Path) -> None:
    from dci_bridge.api.asgi import app_from_env

    key, secret = register_client(store)
    set_policy(store)
    os.environ.update(bridge_env(store, sim_url, DATA / "inprocess-data", signed=not ARGS.unsigned))
    if ARGS.memo_upstream:
        memoize_upstream()
    total = ARGS.searches * (ARGS.rounds + 1)
    bodies: list[bytes] = []
    if not ARGS.unsigned:
        tag = f"inprocess-{os.getpid()}"
        bodies = signed_bodies(key, ids_file, total + 1, tag).read_bytes().splitlines()
    driver = Driver(app_from_env())
    await driver.start()
    headers = [(b"content-type", b"application/json"), (b"host", b"bench")]
    if not ARGS.unsigned:
        form = {"grant_type": "client_credentials", "client_id": SENDER, "client_secret": secret}
        token_body = urlencode(form).encode()
        form_type = [(b"content-type", b"application/x-www-form-urlencoded")]
        status, answer = await driver.post("/oauth2/client/token", token_body, form_type)
        assert status == 200, answer
        token = json.loads(answer)["access_token"]
        headers.append((b"authorization", f"Bearer {token}".encode()))
    sent = 0
    statuses: dict[int, int] = {}

    async def worker(stop: int) -> None:
        nonlocal sent
        while sent < stop:
            sent += 1
            body = bodies[sent] if bodies else unsigned_body(sent, values)
            status, _ = await driver.post("/registry/sync/search", body, headers)
            statuses[status] = statuses.get(status, 0) + 1

    async def batch(count: int) -> None:
        stop = sent + count
        await asyncio.gather(*(worker(stop) for _ in range(ARGS.concurrency)))

    await batch(ARGS.searches)  # warm-up: connections, caches, and the memo when asked
    figures = []
    for round_ in range(ARGS.rounds):
        statuses.clear()
        await asyncio.sleep(0.6)
        before = resource.getrusage(resource.RUSAGE_SELF)
        collections = gc.get_stats()[0]["collections"]
        await batch(ARGS.searches)
        await asyncio.sleep(0.6)  # the audit writer's and other background work of the round
        after = resource.getrusage(resource.RUSAGE_SELF)
        user = 1000 * (after.ru_utime - before.ru_utime) / ARGS.searches
        system = 1000 * (after.ru_stime - before.ru_stime) / ARGS.searches
        switches = (after.ru_nvcsw - before.ru_nvcsw) / ARGS.searches
        collected = (gc.get_stats()[0]["collections"] - collections) / ARGS.searches
        per_search = user + system
        figures.append(per_search)
        print(
            f"round {round_}: {per_search:.3f} ms CPU per search (user {user:.3f}, system"
            f" {system:.3f}, {switches:.1f} voluntary context switches, {collected:.2f} young"
            f" garbage collections), answers {statuses}",
            flush=True,
        )
    await driver.stop()
    label = "unsigned" if ARGS.unsigned else "signed"
    memo = ", upstream answers memoized" if ARGS.memo_upstream else ""
    print(f"{label}{memo}: min {min(figures):.3f} ms CPU per search over {ARGS.rounds} rounds")


def main() -> None:
    import uvloop

    from dci_bridge.cli._common import DEMO_SEED

    DATA.mkdir(parents=True, exist_ok=True)
    values = brns(5000, DEMO_SEED)
    if ARGS.memo_upstream:  # every round asks for the same persons: all memoized after warm-up
        values = values[: ARGS.searches]
    ids_file = DATA / f"inprocess-brn-{os.getpid()}.txt"
    ids_file.write_text("\n".join(values) + "\n")
    store = DATA / f"inprocess-{os.getpid()}.sqlite3"
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "dci_bridge", "simulator", "--port", str(port)]  # noqa: RUF005
        + ["--persons", "5000", "--daily-quota", str(10**9)],
        stdout=subprocess.DEVNULL,
        cwd=ARGS.code or ROOT,
    )
    try:
        wait_port(port, 300)
        uvloop.run(run(f"http://127.0.0.1:{port}", store, values, ids_file))
    finally:
        stop_process(sim)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        ids_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
