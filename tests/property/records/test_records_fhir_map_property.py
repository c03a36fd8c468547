"""Hypothesis: no mutilation of a real bundle makes `map_bundle` raise anything but MappingError."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci_bridge.records.fhir_map import MappingError, map_bundle
from dci_bridge.records.mapped import MappedRecord

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "opencrvs"
BUNDLES = [
    json.loads(path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.glob("fhir-*.json"))
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "Patient/x", "urn:uuid:x", "2023-02-30", "REGISTERED", "BIRTH"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _mutilate(bundle: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    result = copy.deepcopy(bundle)
    for _ in range(data.draw(st.integers(1, 4))):
        paths = [p for p in _paths(result) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = result
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = data.draw(json_values)
    return result


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BUNDLES), st.data())
def test_mutilated_bundles_map_or_raise_mapping_error(bundle, data):
    mutilated = _mutilate(bundle, data)
    error: MappingError | None = None
    try:
        record = map_bundle(mutilated)
    except MappingError as exc:
        error = exc
    if error is not None:
        assert error.path.startswith("$")
        assert error.message
    else:
        assert isinstance(record, MappedRecord)
        assert record.record_id
        assert record.subjects


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_arbitrary_json_is_never_a_crash(value):
    with contextlib.suppress(MappingError):
        map_bundle(value)
