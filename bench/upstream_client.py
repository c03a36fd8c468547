"""CPU per OpenCRVS call: the bridge's upstream client against aiohttp (and pyreqwest).

Each client sends the same `fetchRegistration` GraphQL POST, with the same token and
headers, to the OpenCRVS simulator (`dci-bridge simulator`, its own process) on loopback.
In this process, rounds alternate between the clients: N calls, 16 at a time, then N calls
one at a time. Each row is this process's CPU (user + system, from getrusage) per call and
its voluntary context switches per call; the summary gives the median per client and the
ratios. This decided the upstream client (docs/decisions.md, "The OpenCRVS record source").
pyreqwest, the bridge's client before the event-loop one, is measured too when it is
installed (`pip install 'pyreqwest>=0.15,<0.16'`; it is no longer a dependency).

python bench/upstream_client.py [--calls 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.upstream_search import brns, start_simulator  # noqa: E402
from tests.servers import stop_process, wait_until_serving  # noqa: E402
from tests.simulators import simulator_token  # noqa: E402

Call = Callable[[], Awaitable[tuple[int, bytes]]]
BRIDGE = "bridge (event loop)"


def fetch_request(sim_url: str) -> tuple[str, bytes, dict[str, str]]:
    """URL, body and headers of one `fetchRegistration` of a seeded birth."""
    from dci_bridge.cli._common import DEMO_SEED
    from dci_bridge.upstream.opencrvs.v1 import FETCH_REGISTRATION, SEARCH_EVENTS

    token = simulator_token(sim_url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    search = {
        "operationName": "searchEvents",
        "query": SEARCH_EVENTS,
        "variables": {
            "advancedSearchParameters": {
                "registrationNumber": brns(200, DEMO_SEED)[100],
                "event": "birth",
                "registrationStatuses": ["REGISTERED", "CERTIFIED", "ISSUED"],
            },
            "count": 10,
            "skip": 0,
        },
    }
    found = httpx.post(f"{sim_url}/graphql", json=search, headers=headers).json()
    record = found["data"]["searchEvents"]["results"][0]["id"]
    body = {
        "operationName": "fetchRegistration",
        "query": FETCH_REGISTRATION,
        "variables": {"id": record},
    }
    return f"{sim_url}/graphql", json.dumps(body).encode(), headers


async def bridge_client(url: str, body: bytes, headers: dict[str, str]) -> tuple[Call, Call]:
    from dci_bridge.upstream.opencrvs.http import UpstreamHttp

    http = UpstreamHttp(max_connections=16, timeout_s=10)
    prepared = UpstreamHttp.headers(headers)

    async def call() -> tuple[int, bytes]:
        return await http.request("POST", url, body=body, headers=prepared, idempotent=True)

    return call, http.aclose


async def pyreqwest_client(url: str, body: bytes, headers: dict[str, str]) -> tuple[Call, Call]:
    """The client the bridge used in sessions 6-7: one-thread runtime, like the bridge had."""
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder
    from pyreqwest.http import HeaderMap

    client = (
        ClientBuilder()
        .runtime_multithreaded(False)
        .max_connections(16)
        .timeout(timedelta(seconds=10))
        .follow_redirects(False)
        .default_cookie_store(False)
        .build()
    )
    prepared = HeaderMap(headers)

    async def call() -> tuple[int, bytes]:
        response = await client.post(url).headers(prepared).body_bytes(body).build().send()
        return response.status, bytes(await response.bytes())

    return call, client.close


async def aiohttp_client(url: str, body: bytes, headers: dict[str, str]) -> tuple[Call, Call]:
    import aiohttp
    from multidict import CIMultiDict
    from yarl import URL

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=16, keepalive_timeout=4.0),
        timeout=aiohttp.ClientTimeout(total=10),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    target, prepared = URL(url), CIMultiDict(headers)

    async def call() -> tuple[int, bytes]:
        async with session.post(target, data=body, headers=prepared) as response:
            return response.status, await response.read()

    return call, session.close


async def measure(call: Call, calls: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per call, voluntary context switches per call) over `calls` calls."""
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status, answer = await call()
            assert status == 200, status
            assert b"fetchRegistration" in answer

    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return 1000 * cpu / calls, (after.ru_nvcsw - before.ru_nvcsw) / calls


async def run(args: argparse.Namespace, url: str, body: bytes, headers: dict[str, str]) -> None:
    clients = {
        BRIDGE: await bridge_client(url, body, headers),
        "aiohttp": await aiohttp_client(url, body, headers),
    }
    if importlib.util.find_spec("pyreqwest") is not None:
        clients["pyreqwest"] = await pyreqwest_client(url, body, headers)
    figures: dict[tuple[str, int], list[float]] = {}
    try:
        for call, _ in clients.values():
            await measure(call, 300, 16)  # connections, caches
        print(f"{'client':20} {'concurrency':>11} {'CPU ms/call':>12} {'switches/call':>14}")
        for _ in range(args.rounds):
            for name, (call, _) in clients.items():
                for concurrency in (16, 1):
                    cpu, switches = await measure(call, args.calls, concurrency)
                    figures.setdefault((name, concurrency), []).append(cpu)
                    print(f"{name:20} {concurrency:>11} {cpu:>12.3f} {switches:>14.1f}")
    finally:
        for _, close in clients.values():
            await close()
    for concurrency in (16, 1):
        ours = statistics.median(figures[(BRIDGE, concurrency)])
        line = f"concurrency {concurrency}: median CPU per call, bridge {ours:.3f} ms"
        for name in clients:
            if name != BRIDGE:
                theirs = statistics.median(figures[(name, concurrency)])
                line += f"; {name} {theirs:.3f} ms (bridge/{name} {ours / theirs:.2f})"
        print(line)


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=4000, help="calls per round and setting")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sim, sim_url = start_simulator(200)
    try:
        wait_until_serving(f"{sim_url}/.well-known", sim, exited=lambda: "the simulator exited")
        url, body, headers = fetch_request(sim_url)
        uvloop.run(run(args, url, body, headers))
    finally:
        stop_process(sim)


if __name__ == "__main__":
    main()
