"""Fixtures for the records unit tests: the OpenCRVS FHIR bundles of tests/fixtures/opencrvs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "opencrvs"
BIRTH = "fhir-birth-bundle.opencrvs-core-v1.8.3.json"
DEATH = "fhir-death-bundle.opencrvs-core-v1.8.3.json"
LEGACY = "fhir-birth-mark-registered-bundle.legacy-2019.opencrvs-core-v1.8.3.json"

_CACHE: dict[str, dict[str, Any]] = {}


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture bundle."""
    if name not in _CACHE:
        _CACHE[name] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return copy.deepcopy(_CACHE[name])


@pytest.fixture
def birth_bundle() -> dict[str, Any]:
    return load(BIRTH)


@pytest.fixture
def death_bundle() -> dict[str, Any]:
    return load(DEATH)


@pytest.fixture
def legacy_bundle() -> dict[str, Any]:
    return load(LEGACY)
