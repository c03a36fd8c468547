"""Fixtures for the crypto tests: a fixed clock and signing keys per algorithm."""

from __future__ import annotations

import pytest

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.jwk import SigningKey, generate_signing_key
from tests.unit.crypto.crypto_support import ALGORITHMS, START


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="session")
def keys_by_alg() -> dict[str, SigningKey]:
    """One signing key per algorithm, made once (RSA generation is slow)."""
    clock = FixedClock(START)
    return {alg: generate_signing_key(alg, clock=clock) for alg in ALGORITHMS}


@pytest.fixture(scope="session")
def other_keys_by_alg() -> dict[str, SigningKey]:
    """A second, unrelated key per algorithm."""
    clock = FixedClock(START)
    return {alg: generate_signing_key(alg, clock=clock) for alg in ALGORITHMS}


@pytest.fixture(scope="session")
def ed_key(keys_by_alg: dict[str, SigningKey]) -> SigningKey:
    return keys_by_alg["EdDSA"]
