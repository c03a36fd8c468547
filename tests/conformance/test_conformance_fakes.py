"""The suite passes a correct registry and fails a broken one on exactly the right cases."""

from __future__ import annotations

import pytest

from conformance.checks import CATALOGUE, Profile, Severity
from conformance.runner import Outcome
from conformance.schemas import SchemaSet
from tests.conformance.fakes.harness import explain, fake_registry, ids, run_cases

EXPECTED_SKIPS = {
    "DCI-SEARCH-005",  # graphql is off by default
    "DCI-ASYNC-012",
    "DCI-SIG-017",  # the expired Signature: string needs the dci-signature scheme
}


@pytest.mark.parametrize("schemas", ["specs", "bundled"])
def test_correct_registry_passes_every_case(schemas):
    with fake_registry() as (_fake, url):
        summary = run_cases(url, schemas=None if schemas == "specs" else SchemaSet.load(None))
    assert ids(summary, Outcome.FAILED) | ids(summary, Outcome.ERROR) == set(), explain(summary)
    assert ids(summary, Outcome.SKIPPED) == EXPECTED_SKIPS
    assert len(summary.results) == len(CATALOGUE.select(Profile.REGISTRY))
    assert summary.exit_code == 0


def test_dci_signature_scheme_passes_including_expiry():
    only = ["signatures", "DCI-SEARCH-001", "DCI-ASYNC-002"]
    with fake_registry() as (_fake, url):
        summary = run_cases(url, only=only, **{"identity.signature_scheme": "dci-signature"})
    assert not ids(summary, Outcome.FAILED) | ids(summary, Outcome.ERROR), explain(summary)
    assert "DCI-SIG-017" in ids(summary, Outcome.PASSED)


_AUTH_REFUSALS = {f"DCI-AUTH-{n:03d}" for n in (*range(1, 12), 16)}
_SIG_NEGATIVES = {f"DCI-SIG-{n:03d}" for n in (10, 11, 12, 13, 14, 15, 16, 18)}
_BAD_INPUT = {
    *(f"DCI-ERR-{n:03d}" for n in (1, 2, 3, 4, 5, 6, 7, 11, 12, 15, 16, 18, 28, 29, 30)),
    "DCI-SEARCH-016",
    "DCI-SEARCH-018",
    "DCI-SUB-007",
    "DCI-SUB-008",
}
_CALLBACK_CASES = {
    *(f"DCI-ASYNC-{n:03d}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 11, 13)),
    *(f"DCI-ENV-{n:03d}" for n in (7, 8, 9, 10, 11, 12)),
    *(f"DCI-NOTIFY-{n:03d}" for n in (1, 2, 3, 4, 5)),
    *(f"DCI-SIG-{n:03d}" for n in (4, 5, 6, 7, 8)),
    *(f"DCI-SUB-{n:03d}" for n in (2, 4, 5, 9)),
    *(f"DCI-TXN-{n:03d}" for n in (1, 3, 4, 5, 7)),
}

BROKEN = {
    "unsigned": {"DCI-NOTIFY-002", *(f"DCI-SIG-{n:03d}" for n in range(3, 9))},
    "wrong_action": {"DCI-ENV-001", "DCI-ENV-002"},
    "no_correlation": {
        "DCI-ASYNC-002",
        *(f"DCI-ENV-{n:03d}" for n in (1, 3, 7, 8, 9, 10, 11)),
        "DCI-SUB-002",
        "DCI-SUB-004",
        "DCI-TXN-003",
    },
    "crash_on_bad_input": _BAD_INPUT,
    "ignore_pagination": {
        "DCI-ASYNC-007",
        "DCI-ASYNC-008",
        "DCI-ASYNC-009",
        "DCI-ASYNC-013",
        *(f"DCI-SEARCH-{n:03d}" for n in (7, 8, 9, 10, 13, 14, 15, 19)),
    },
    "accept_bad_tokens": _AUTH_REFUSALS,
    "echo_message_id": {"DCI-ENV-002", "DCI-ENV-012"},
    "no_replay_guard": {"DCI-ERR-009", "DCI-ERR-010"},
    "private_jwks": {"DCI-SIG-001"},
    "skip_signature_check": _SIG_NEGATIVES,
    "wrong_callback_ids": _CALLBACK_CASES,
    "lenient_formats": {"DCI-ERR-015", "DCI-ERR-016", "DCI-ERR-018"},
    "notify_invalid": {"DCI-NOTIFY-001"},
    "notify_unlinked": {"DCI-NOTIFY-005"},
    "notify_after_unsubscribe": {"DCI-NOTIFY-004"},
}


# Faults whose cases do not overlap run together: the failed set must be the exact union.
COMBINED = [
    ("unsigned", "wrong_action", "echo_message_id", "private_jwks", "no_replay_guard"),
    ("crash_on_bad_input", "accept_bad_tokens", "skip_signature_check"),
    ("no_correlation", "ignore_pagination"),
    ("lenient_formats", "notify_invalid", "notify_unlinked"),
    ("notify_after_unsubscribe",),
    ("wrong_callback_ids",),
]


def test_every_fault_is_exercised():
    assert {f for group in COMBINED for f in group} == set(BROKEN)


@pytest.mark.parametrize("faults", COMBINED, ids="+".join)
def test_broken_registry_fails_exactly_the_cases_checking_it(faults):
    expected = set().union(*(BROKEN[f] for f in faults))
    # callbacks that never match are waited for the whole timeout: short only where expected
    timeout = 0.5 if "wrong_callback_ids" in faults else 5.0
    with fake_registry(set(faults)) as (_fake, url):
        summary = run_cases(url, **{"receiver.callback_timeout_s": timeout})
    assert ids(summary, Outcome.ERROR) == set(), explain(summary)
    assert ids(summary, Outcome.FAILED) == expected, explain(summary)
    assert summary.exit_code == 1


def test_server_errors_are_critical_and_carry_the_exchange():
    with fake_registry({"crash_on_bad_input"}) as (_fake, url):
        summary = run_cases(url, only=["DCI-ERR-002"])
    (result,) = summary.results
    failure = result.failures[0]
    assert failure.severity is Severity.CRITICAL
    assert failure.message == "Expected no 5xx, got HTTP 500"
    assert failure.exchange is not None
    assert failure.exchange.status == 500
    assert '"header"' in failure.exchange.request_body
    assert "Internal Server Error" in failure.exchange.response_body


def test_mismatched_callbacks_are_named_in_the_failure():
    with fake_registry({"wrong_callback_ids"}) as (_fake, url):
        summary = run_cases(url, only=["DCI-ASYNC-002"], **{"receiver.callback_timeout_s": 0.5})
    message = summary.results[0].failures[0].message
    assert "none matching" in message
    assert "transaction_id 'not-txn-" in message


def test_disabled_features_are_skipped_with_their_reason():
    overrides = {"features": {"subscribe": False, "callbacks": False}}
    with fake_registry() as (_fake, url):
        summary = run_cases(url, only=["subscribe", "search-async"], **overrides)
    reasons = {r.check.id: r.skip_reason for r in summary.results}
    assert reasons["DCI-SUB-001"] == "feature `subscribe` is disabled in the configuration"
    assert (
        reasons["DCI-ASYNC-002"] == "the callback receiver is disabled (feature `callbacks` is off)"
    )
    assert "DCI-ASYNC-001" in ids(summary, Outcome.PASSED)
    assert "DCI-SUB-003" in ids(summary, Outcome.PASSED)


def test_unreachable_target_fails_critically_not_with_an_error():
    summary = run_cases("http://127.0.0.1:9", only=["DCI-ENV-001"], features={"callbacks": False})
    (result,) = summary.results
    assert result.outcome is Outcome.FAILED
    assert result.failures[0].severity is Severity.CRITICAL
