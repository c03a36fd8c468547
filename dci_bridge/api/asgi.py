"""ASGI entry point for servers: `uvicorn --factory dci_bridge.api.asgi:app_from_env`."""

from __future__ import annotations

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
    return create_app(settings)
