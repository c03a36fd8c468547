"""A faithful OpenCRVS simulator (v1.x; v2 events API as a second mode) for tests and the demo.

Start it in a test with `tests.servers.serve_asgi(OpenCrvsSimulator(config))`, or from the
command line with `dci-bridge simulator`. Only tests, the CLI and the demo import this
package; the bridge's own code never does (an import-linter contract says so).
"""

from dci_bridge.upstream.simulator.app import OpenCrvsSimulator
from dci_bridge.upstream.simulator.config import (
    SEARCH_CLIENT,
    WEBHOOK_CLIENT,
    Faults,
    SimClient,
    SimulatorConfig,
)
from dci_bridge.upstream.simulator.population import Population

__all__ = [
    "SEARCH_CLIENT",
    "WEBHOOK_CLIENT",
    "Faults",
    "OpenCrvsSimulator",
    "Population",
    "SimClient",
    "SimulatorConfig",
]
