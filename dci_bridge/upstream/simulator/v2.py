"""OpenCRVS v2 (events API) mode of the simulator: filled in by a later slice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dci_bridge.records.mapped import MappedRecord
    from dci_bridge.upstream.simulator.app import OpenCrvsSimulator
    from dci_bridge.upstream.simulator.tokens import Claims

PREFIXES = ("/api/events/", "/events/")
V2_SCOPES = ("record.search", "record.read")


def handle(
    sim: OpenCrvsSimulator, method: str, path: str, body: bytes, claims: Claims
) -> tuple[int, Any]:
    return 404, {"message": "Not Found"}


async def send_hook(sim: OpenCrvsSimulator, record: MappedRecord, event: str) -> dict[str, Any]:
    return {}
