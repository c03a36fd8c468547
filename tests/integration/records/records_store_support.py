"""Helpers for the store integration tests: the OpenCRVS fixture bundles."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "opencrvs"
_CACHE: dict[str, dict[str, Any]] = {}


def fixture_bundle(kind: str, *, status: str | None = None) -> dict[str, Any]:
    """A copy of the `birth`, `death` or `legacy` fixture bundle, optionally re-statused."""
    name = {
        "birth": "fhir-birth-bundle.opencrvs-core-v1.8.3.json",
        "death": "fhir-death-bundle.opencrvs-core-v1.8.3.json",
        "legacy": "fhir-birth-mark-registered-bundle.legacy-2019.opencrvs-core-v1.8.3.json",
    }[kind]
    if name not in _CACHE:
        _CACHE[name] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    bundle = copy.deepcopy(_CACHE[name])
    if status is not None:
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Task":
                entry["resource"]["businessStatus"]["coding"][0]["code"] = status
    return bundle
