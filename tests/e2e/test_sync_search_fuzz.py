"""Generated malformed envelopes never get a 5xx: every answer is a DCI answer."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import envelope, item
from tests.security_support import now_ts

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


BASE = envelope(
    item("idtype-value", {"type": "BRN", "value": "2020BABCDEF"}, reference_id="a"),
    item(
        "predicate",
        [
            {
                "expression1": {"attribute_name": "YOB", "operator": "eq", "attribute_value": 1990},
                "condition": "and",
                "expression2": {
                    "attribute_name": "sex",
                    "operator": "eq",
                    "attribute_value": "male",
                },
            }
        ],
        reference_id="b",
        sort=[{"attribute_name": "birth_date", "sort_order": "asc"}],
        pagination={"page_size": 5, "page_number": 1},
    ),
    item(
        "expression", {"type": "x", "value": {"expression": "birth_year >= 2000"}}, reference_id="c"
    ),
)
PATHS = _paths(BASE)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(PATHS))
        node: Any = body
        try:
            for key in path[:-1]:
                node = node[key]
            if draw(st.booleans()):
                node[path[-1]] = draw(json_values)
            elif isinstance(node, dict):
                node.pop(path[-1], None)
        except (KeyError, IndexError, TypeError):
            continue
    return json.dumps(body).encode()


def _fresh(body: bytes) -> bytes:
    """BASE was built at import: give a mutant a new message_id and a current message_ts
    (where the mutation kept them) so it is not refused as a replay or as stale."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    header = value.get("header") if isinstance(value, dict) else None
    if not isinstance(header, dict):
        return body
    if header.get("message_id") == BASE["header"]["message_id"]:
        header["message_id"] = str(uuid.uuid4())
    if header.get("message_ts") == BASE["header"]["message_ts"]:
        header["message_ts"] = now_ts()
    return json.dumps(value).encode()


@given(st.one_of(mutated(), st.binary(max_size=200)))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_generated_envelope_gets_a_server_error(client: httpx.Client, body: bytes) -> None:
    body = _fresh(body)
    response = client.post(
        "/registry/sync/search", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text[:300]
    answer = response.json()
    if response.status_code == 200:
        assert answer["header"]["action"] == "on-search"
        for part in answer["message"]["search_response"]:
            assert part["status"] in {"succ", "rjct"}
    else:
        assert answer["errors"][0]["code"].startswith("err.")
