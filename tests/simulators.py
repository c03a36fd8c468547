"""The OpenCRVS simulator in tests: start it over real loopback HTTP, receive its webhooks.

```
with running_simulator(persons=300) as sim:          # sim.url, sim.app (OpenCrvsSimulator)
    sim.app.set_faults(latency_ms=5, fail_next=2)    # or POST {sim.url}/_sim/faults
    token = sim.token()                              # a RECORD_SEARCH token
    httpx.post(f"{sim.url}/_sim/register", json={"event": "birth"})  # signed webhook to subscribers
```
`WebhookReceiver` is a tiny ASGI receiver that answers the verification handshake and
records every delivery (raw body and headers), for tests of the simulator itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import msgspec

from dci_bridge.ops.asgi import read_body
from dci_bridge.upstream.simulator import (
    SEARCH_CLIENT,
    WEBHOOK_CLIENT,
    OpenCrvsSimulator,
    SimClient,
    SimulatorConfig,
)
from tests.servers import serve_asgi

SEED = 20261123


@dataclass
class RunningSimulator:
    url: str
    app: OpenCrvsSimulator

    def token(self, client: SimClient = SEARCH_CLIENT) -> str:
        return simulator_token(self.url, client)


def simulator_token(url: str, client: SimClient = SEARCH_CLIENT) -> str:
    """A system-client token from the simulator at `url` (in process or its own process)."""
    answer = httpx.post(
        f"{url}/token",
        params={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


_POPULATIONS: dict[tuple[int, int], Any] = {}


@contextlib.contextmanager
def running_simulator(
    *, persons: int = 1500, seed: int = SEED, **config: Any
) -> Iterator[RunningSimulator]:
    """A simulator on a free loopback port (the population is cached per size and seed)."""
    from dci_bridge.upstream.simulator import Population

    key = (persons, seed)
    if key not in _POPULATIONS:
        _POPULATIONS[key] = Population.seeded(persons, seed)
    settings = SimulatorConfig(persons=persons, seed=seed, **config)
    app = OpenCrvsSimulator(settings, population=_POPULATIONS[key])
    with serve_asgi(app) as url:
        yield RunningSimulator(url, app)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """ASGI callback receiver: answers handshakes (unless `refuse`) and records requests."""

    received: list[Received] = field(default_factory=list)
    status: int = 200
    refuse: bool = False
    wrong_challenge: bool = False

    @property
    def deliveries(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await read_body(receive)
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["method"], scope["path"], query, headers, body))
        status, answer = self.status, b""
        if scope["method"] == "GET":
            if self.refuse:
                status = 403
            else:
                challenge = query.get("challenge", "")
                if self.wrong_challenge:
                    challenge += "x"
                status, answer = 200, msgspec.json.encode({"challenge": challenge})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


__all__ = [
    "SEARCH_CLIENT",
    "WEBHOOK_CLIENT",
    "Received",
    "RunningSimulator",
    "WebhookReceiver",
    "running_simulator",
]
