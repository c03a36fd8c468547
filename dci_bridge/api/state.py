"""What the app holds for its lifetime: settings, record source, use-case services."""

from __future__ import annotations

from dataclasses import dataclass

from dci_bridge.records.source import RecordSource
from dci_bridge.registry.search import SearchService
from dci_bridge.settings import Settings


@dataclass(slots=True)
class BridgeState:
    settings: Settings
    source: RecordSource
    search: SearchService
