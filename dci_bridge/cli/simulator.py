"""`dci-bridge simulator`: run the OpenCRVS simulator (for demos, manual tests, benchmarks)."""

from __future__ import annotations

import click

from dci_bridge.cli._common import DEMO_SEED, main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=7070, show_default=True)
@click.option("--persons", type=int, default=1500, show_default=True, help="Population size.")
@click.option("--seed", "seed_value", type=int, default=DEMO_SEED, show_default=True)
@click.option("--generation", type=click.Choice(["v1", "v2"]), default="v1", show_default=True)
@click.option("--latency-ms", type=float, default=0.0, show_default=True, help="Added latency.")
@click.option(
    "--daily-quota", type=int, default=2000, show_default=True, help="Searches per client per day."
)
def simulator(
    host: str,
    port: int,
    persons: int,
    seed_value: int,
    generation: str,
    latency_ms: float,
    daily_quota: int,
) -> None:
    """Serve a simulated OpenCRVS (auth, gateway and webhooks on one port).

    Integrations: the fixed demo clients of dci_bridge.upstream.simulator.config
    (SEARCH_CLIENT, WEBHOOK_CLIENT). Test controls under /_sim/ (faults, register, ...).
    """
    import msgspec
    import uvicorn

    from dci_bridge.upstream.simulator import OpenCrvsSimulator, SimulatorConfig
    from dci_bridge.upstream.simulator.config import SEARCH_CLIENT, WEBHOOK_CLIENT, Faults

    clients = tuple(
        msgspec.structs.replace(c, daily_quota=daily_quota) for c in (SEARCH_CLIENT, WEBHOOK_CLIENT)
    )
    config = SimulatorConfig(
        generation=generation,  # type: ignore[arg-type]
        persons=persons,
        seed=seed_value,
        clients=clients,
        faults=Faults(latency_ms=latency_ms),
    )
    click.echo(f"loading {persons} persons (seed {seed_value}) ...")
    app = OpenCrvsSimulator(config)
    click.echo(f"OpenCRVS {generation} simulator on http://{host}:{port}")
    click.echo(f"  search client id {SEARCH_CLIENT.client_id}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
