"""The `client` profile: a correct receiver passes, a broken one fails the right cases."""

from __future__ import annotations

import pytest

from conformance.checks import CATALOGUE, Profile
from conformance.runner import Outcome
from conformance.server import BackgroundServer
from tests.conformance.fakes.client import TOKEN, FakeClient
from tests.conformance.fakes.harness import KEYS, explain, ids, run_cases

CLIENT_CASES = {c.id for c in CATALOGUE.select(Profile.CLIENT)}
INVALID = {"DCI-CLIENT-002", "DCI-CLIENT-004", "DCI-CLIENT-006", "DCI-CLIENT-008", "DCI-CLIENT-010"}
INVALID |= {
    "DCI-CLIENT-011",
    "DCI-CLIENT-012",
    "DCI-CLIENT-013",
    "DCI-CLIENT-014",
    "DCI-CLIENT-016",
}


def _run(faults: set[str]):
    fake = FakeClient(KEYS.public_jwks(), faults=faults)
    with BackgroundServer(fake.app) as server:
        return run_cases(server.url, profile="client", auth={"token": TOKEN})


def test_correct_client_passes_every_client_case():
    summary = _run(set())
    assert ids(summary, Outcome.PASSED) == CLIENT_CASES, explain(summary)
    assert {r.check.profile for r in summary.results} == {Profile.CLIENT}


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("accept_anything", INVALID | {"DCI-CLIENT-015"}),
        ("crash_on_bad_input", INVALID - {"DCI-CLIENT-011", "DCI-CLIENT-012"}),
        ("no_auth", {"DCI-CLIENT-015"}),
    ],
)
def test_broken_client_fails_the_cases_checking_it(fault, expected):
    summary = _run({fault})
    assert ids(summary, Outcome.FAILED) == expected, explain(summary)
