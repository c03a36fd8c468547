"""ASGI entry point for servers: `uvicorn --factory dci_bridge.api.asgi:app_from_env`."""

from __future__ import annotations

from litestar import Litestar

from dci_bridge.api.app import create_app
from dci_bridge.settings import Settings


def app_from_env() -> Litestar:
    """The bridge configured from `DCI_BRIDGE_*` environment variables."""
    return create_app(Settings.from_env())
