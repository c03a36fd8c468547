"""`dci-bridge simulator`: run the OpenCRVS simulator (for demos, manual tests, benchmarks)."""

from __future__ import annotations

import atexit
import subprocess
import sys
import time

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


def _die_with_parent() -> None:
    """Linux: the simulator gets SIGTERM when the demo ends, however it ends (uvicorn
    re-raises the signal that stopped it, so `atexit` alone does not run)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_simulator_process(port: int, persons: int) -> dict[str, str]:
    """Start `dci-bridge simulator` on 127.0.0.1:`port`, wait until it answers, stop it at exit.

    Returns the settings overrides that point the bridge's OpenCRVS source at it.
    """
    import httpx

    from dci_bridge.upstream.simulator.config import SEARCH_CLIENT

    command = [sys.executable, "-m", "dci_bridge", "simulator", "--port", str(port)]
    command += ["--persons", str(persons), "--daily-quota", "1000000"]
    process = subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: S603
    atexit.register(process.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    click.echo(f"starting the OpenCRVS simulator on {url} ({persons} persons) ...")
    while True:
        try:
            if httpx.get(f"{url}/_sim/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise click.ClickException("the OpenCRVS simulator did not start")
        time.sleep(0.2)
    return {
        "upstream__source": "opencrvs",
        "upstream__auth_url": url,
        "upstream__gateway_url": url,
        "upstream__webhooks_url": url,
        "upstream__client_id": SEARCH_CLIENT.client_id,
        "upstream__client_secret": SEARCH_CLIENT.client_secret,
    }
