"""New registrations for `/_sim/register`: fresh birth and death records, as OpenCRVS mints them.

Records come from the seed's generator run with another seed (`seed + 1`), so they are new
persons (fresh record ids, tracking ids `B`/`D` + 6 characters, BRN/DRN `<year><tracking
id>`) that are not in the served population until registered. The Task's `lastModified`
is set to the registration time.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

from dci_bridge.clock import isoformat_z
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.seed import generate_bundles

_DOC_CODES = {"birth": "birth-declaration", "death": "death-declaration"}


def _event_of(bundle: dict[str, Any]) -> str | None:
    for entry in bundle.get("entry", ()):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "Composition":
            for coding in resource.get("type", {}).get("coding", ()):
                for event, code in _DOC_CODES.items():
                    if coding.get("code") == code:
                        return event
    return None


class RegistrationMint:
    """Hands out the next new birth or death bundle."""

    def __init__(self, seed: int, locations: LocationIndex) -> None:
        self._source: Iterator[dict[str, Any]] = generate_bundles(
            10**9, seed + 1, locations=locations
        )
        self._waiting: dict[str, list[dict[str, Any]]] = {"birth": [], "death": []}

    def next(self, event: str) -> dict[str, Any]:
        waiting = self._waiting[event]
        while not waiting:
            bundle = next(self._source)
            kind = _event_of(bundle)
            if kind in self._waiting:
                self._waiting[kind].append(bundle)
        bundle = copy.deepcopy(waiting.pop(0))
        now = isoformat_z(dt.datetime.now(dt.UTC))
        for entry in bundle.get("entry", ()):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Task":
                resource["lastModified"] = now
        return bundle
