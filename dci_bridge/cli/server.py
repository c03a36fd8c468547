"""`dci-bridge serve | migrate | seed | demo`: running the bridge and loading its data."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from dci_bridge.cli._common import DEMO_SEED, demo_steps, main
from dci_bridge.cli._common import export_env as _export
from dci_bridge.cli._common import settings_from_env as _settings
from dci_bridge.settings import ENV_PREFIX, Settings


@main.command()
@click.option("--host", help="Listen address (DCI_BRIDGE_SERVER__HOST).")
@click.option("--port", type=int, help="Listen port (DCI_BRIDGE_SERVER__PORT).")
@click.option("--workers", type=int, help="Worker processes (DCI_BRIDGE_SERVER__WORKERS).")
@click.option("--database-url", help="Store URL (DCI_BRIDGE_DATABASE__URL).")
@click.option("--data-dir", help="Local state directory (DCI_BRIDGE_DATA_DIR).")
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    database_url: str | None,
    data_dir: str | None,
) -> None:
    """Run the bridge under the production ASGI server."""
    overrides = {
        "server__host": host,
        "server__port": port,
        "server__workers": workers,
        "database__url": database_url,
        "data_dir": data_dir,
    }
    settings = _settings(**overrides)
    _export(overrides)
    _run_server(settings)


def _run_server(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully.

    On the signal uvicorn stops accepting connections, lets in-flight requests finish (up to
    `server.graceful_timeout_s`), then runs the app's lifespan shutdown: shutdown hooks
    (delivery leases), the audit buffer's last write, closing the database.
    """
    import uvicorn

    from dci_bridge.db.engine import migrate
    from dci_bridge.ops.logs import configure_logging

    configure_logging(settings.log.level, settings.log.format)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    if settings.database.migrate_on_start:
        migrate(settings.database_url)  # once here, not racing in every worker
        os.environ[ENV_PREFIX + "DATABASE__MIGRATE_ON_START"] = "false"
    if settings.server.workers > 1 and settings.metrics.enabled:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir(settings))
    logging.getLogger("dci_bridge.server").info(
        "serving",
        extra={
            "fields": {
                "host": settings.server.host,
                "port": settings.server.port,
                "workers": settings.server.workers,
            }
        },
    )
    uvicorn.run(
        "dci_bridge.api.asgi:app_from_env",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        log_config=None,  # keep ours (configured above, and by each worker's app factory)
        log_level=settings.log.level,
        access_log=False,  # the bridge writes its own access line (no raw paths)
        timeout_graceful_shutdown=settings.server.graceful_timeout_s,
        server_header=False,
        ws="none",  # no WebSocket routes: the websockets library is not even loaded (~2 MB)
        # each response's head and body in one write (ops/http_protocol.py)
        http="dci_bridge.ops.http_protocol:CoalescingHttpToolsProtocol",
        proxy_headers=False,  # the bridge never reads the client's address or scheme
    )


def _metrics_dir(settings: Settings) -> Path:
    """An empty directory for the workers' metric files (stale files would add up)."""
    import shutil
    import tempfile

    configured = settings.metrics.multiprocess_dir
    if not configured:  # not in the data directory: replicas may share that one
        return Path(tempfile.mkdtemp(prefix="dci-bridge-metrics-")).resolve()
    directory = Path(configured)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory.resolve()


@main.command()
def migrate() -> None:
    """Apply database migrations to the configured store."""
    from dci_bridge.db.engine import migrate as run_migrations

    settings = _settings()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    run_migrations(settings.database_url)
    click.echo("migrations applied")


@main.command()
@click.option("--persons", type=int, default=50_000, show_default=True)
@click.option("--seed", "seed_value", type=int, default=DEMO_SEED, show_default=True)
@click.option("--database-url", help="Store URL (DCI_BRIDGE_DATABASE__URL).")
def seed(persons: int, seed_value: int, database_url: str | None) -> None:
    """Load a deterministic synthetic population (Farajaland-like) into the store."""
    settings = _settings(database__url=database_url)
    _seed(settings, persons, seed_value)


def _seed(settings: Settings, persons: int, seed_value: int) -> int:
    from dci_bridge.records.seed import seed_store

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    click.echo(f"seeding {persons} persons (seed {seed_value}) ...")
    count = asyncio.run(seed_store(settings.database_url, persons=persons, seed=seed_value))
    click.echo(f"seeded {count} persons in {time.perf_counter() - started:.1f} s")
    return count


@main.command()
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--persons", type=int, help="Population size [embedded: 50000, opencrvs: 5000].")
@click.option(
    "--source",
    type=click.Choice(["embedded", "opencrvs"]),
    default="embedded",
    show_default=True,
    help="opencrvs: start the OpenCRVS simulator and answer searches from it, live.",
)
def demo(port: int, persons: int | None, source: str) -> None:
    """Seed the embedded store if it is empty, print example requests, and serve."""
    overrides: dict[str, Any] = {"server__port": port}
    if ENV_PREFIX + "LOG__FORMAT" not in os.environ:
        overrides["log__format"] = "text"  # a person watches the demo's terminal
    if source == "opencrvs":
        from dci_bridge.cli.simulator import start_simulator_process

        overrides.update(start_simulator_process(port + 1, persons or 5_000))
    settings = _settings(**overrides)
    _export(overrides)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    from dci_bridge.db.engine import migrate as run_migrations

    run_migrations(settings.database_url)
    if source == "embedded" and asyncio.run(_count_persons(settings)) == 0:
        _seed(settings, persons or 50_000, DEMO_SEED)
    examples = _examples()
    _print_examples(settings, examples)
    for step in demo_steps():
        for line in step(settings):
            click.echo(line)
    sys.stdout.flush()
    _run_server(settings)


async def _count_persons(settings: Settings) -> int:
    from dci_bridge.records.store import EmbeddedFhirStore

    store = await EmbeddedFhirStore.open(settings.database_url)
    try:
        return await store.count_persons()
    finally:
        await store.aclose()


def _examples() -> dict[str, str]:
    """Identifiers that exist in the demo population (it is deterministic for DEMO_SEED)."""
    from dci_bridge.records.seed import known_persons

    known = known_persons(DEMO_SEED)
    return {
        "BRN": known.child_brn,
        "UIN": known.mother_uin,
        "DRN": known.deceased_drn,
        "MRN": known.married_mrn,
    }


def _print_examples(settings: Settings, examples: dict[str, str]) -> None:
    """Write one example search body per identifier type; the demo client step (cli/security)
    prints how to sign and send them (every registry call needs a token and a signature)."""
    base = f"http://{settings.server.host}:{settings.server.port}"
    click.echo(f"\ndci-bridge demo on {base}  (Ctrl-C to stop)\n")
    folder = Path(settings.data_dir).resolve() / "demo-requests"
    folder.mkdir(parents=True, exist_ok=True)
    for id_type, value in sorted(examples.items()):
        path = folder / f"search-{id_type.lower()}.json"
        path.write_text(json.dumps(_example_request(id_type, value), indent=2), encoding="utf-8")
        click.echo(f"# search by {id_type}: {path}")
    sys.stdout.flush()


def _example_request(id_type: str, value: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "header": {
            "version": "1.0.0",
            "message_id": f"demo-{id_type.lower()}-1",
            "message_ts": now,
            "action": "search",
            "sender_id": "demo.sp.example.org",
            "total_count": 1,
        },
        "message": {
            "transaction_id": "demo-txn-1",
            "search_request": [
                {
                    "reference_id": "demo-ref-1",
                    "timestamp": now,
                    "search_criteria": {
                        "reg_type": "ns:org:RegistryType:Civil",
                        "query_type": "idtype-value",
                        "query": {"type": id_type, "value": value},
                    },
                }
            ],
        },
    }
