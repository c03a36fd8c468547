"""ASGI entry point for servers: `uvicorn --factory dci_bridge.api.asgi:app_from_env`."""

from __future__ import annotations

import gc

from litestar import Litestar

from dci_bridge.api.app import create_app
from dci_bridge.ops.logs import configure_logging
from dci_bridge.settings import Settings


def app_from_env() -> Litestar:
    """The bridge configured from `DCI_BRIDGE_*` environment variables.

    Each server worker process calls this, so it also configures the process's logging
    (worker processes do not inherit the parent's logging setup).
    """
    settings = Settings.from_env()
    configure_logging(settings.log.level, settings.log.format)
    app = create_app(settings)
    tune_gc(settings.server.gc_threshold)
    return app


def tune_gc(threshold: int) -> None:
    """Fewer, cheaper garbage collections in a server worker: the modules and the app built
    at start (hundreds of thousands of objects, none of them garbage) leave the collector's
    view, so the rarer full collections no longer walk them, and the youngest generation is
    collected every `threshold` allocations instead of Python's 700 (older generations are
    collected after a number of younger collections, so they run less often too). Measured
    with callgrind on signed searches: 8% fewer instructions per search, 3% from freezing
    alone. 0: Python's settings are kept."""
    if threshold <= 0:
        return
    gc.collect()  # what is garbage now is not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
