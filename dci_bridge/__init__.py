"""dci-bridge: an OpenCRVS civil registry behind the DCI CRVS registry API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
