"""`uuid5_text` is `str(uuid.uuid5(...))` for any namespace and name (person keys are stored:
the fast spelling must never change one)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from dci_bridge.records.person import PERSON_NAMESPACE, uuid5_text


@given(name=st.text(max_size=200))
def test_person_keys_are_uuid5(name: str) -> None:
    assert uuid5_text(PERSON_NAMESPACE, name) == str(uuid.uuid5(PERSON_NAMESPACE, name))


@given(namespace=st.uuids(), name=st.text(max_size=50))
def test_any_namespace(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


def test_a_known_key() -> None:
    # the example in the documentation of Python's uuid module
    assert uuid5_text(uuid.NAMESPACE_DNS, "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d"
