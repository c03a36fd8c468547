"""The OpenCRVS record source: live searches against OpenCRVS v1.x (GraphQL) or v2 (events API)."""

from dci_bridge.upstream.opencrvs.source import OpenCrvsSource

__all__ = ["OpenCrvsSource"]
