"""Reporters: valid JUnit XML, schema-valid JSON, a self-contained HTML page, console text."""

from __future__ import annotations

import io
import json
import re
from xml.etree import ElementTree as ET

import pytest
from jsonschema import Draft202012Validator

from conformance.reporting.console import ConsoleReporter
from conformance.reporting.html import HtmlReporter
from conformance.reporting.json import JsonReporter
from conformance.reporting.junit import JUnitReporter
from conformance.runner import Outcome, RunSummary
from conformance.schemas import report_schema
from tests.conformance.fakes.harness import fake_registry, run_cases

ONLY = ["envelope", "DCI-SIG-003", "DCI-SEARCH-005", "DCI-ERR-002"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    console = io.StringIO()
    reporters = [
        JUnitReporter(out / "junit.xml"),
        JsonReporter(out / "report.json"),
        HtmlReporter(out / "report.html"),
        ConsoleReporter(console, color=False),
    ]
    with fake_registry({"unsigned", "wrong_action", "crash_on_bad_input"}) as (_fake, url):
        summary = run_cases(url, only=ONLY, reporters=reporters)
    return summary, out, console.getvalue()


def test_the_sample_run_has_every_outcome_but_error(reports):
    summary: RunSummary = reports[0]
    assert summary.count(Outcome.PASSED)
    assert summary.count(Outcome.FAILED)
    assert summary.count(Outcome.SKIPPED) == 1


def test_junit_is_valid_xml_with_one_testcase_per_case(reports):
    summary, out, _ = reports
    root = ET.parse(out / "junit.xml").getroot()  # noqa: S314 - our own report
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name", "").split(" ")[0] for c in cases] == [r.check.id for r in summary.results]
    failed = {c.get("name", "").split(" ")[0] for c in cases if c.find("failure") is not None}
    assert failed == {r.check.id for r in summary.results if r.outcome is Outcome.FAILED}
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert (
        skipped[0].find("skipped").get("message")
        == "feature `query_graphql` is disabled in the configuration"
    )
    crash = next(c for c in cases if c.get("name", "").startswith("DCI-ERR-002"))
    failure = crash.find("failure")
    assert failure.get("type") == "critical"
    assert "HTTP 500" in failure.get("message")
    assert '"status": 500' in failure.text  # the exchange is in the failure body
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert suites["envelope"].get("failures") == str(
        sum(
            1
            for r in summary.results
            if r.check.group == "envelope" and r.outcome is Outcome.FAILED
        )
    )


def test_json_report_matches_its_schema(reports):
    summary, out, _ = reports
    data = json.loads((out / "report.json").read_text())
    errors = list(Draft202012Validator(report_schema()).iter_errors(data))
    assert errors == []
    assert data["totals"]["total"] == len(summary.results)
    assert data["ok"] is False
    failed = next(c for c in data["cases"] if c["id"] == "DCI-ENV-001")
    assert failed["outcome"] == "failed"
    assert (
        "Expected 'on-search', got 'search' at $.header.action" in failed["failures"][0]["message"]
    )
    assert failed["failures"][0]["exchange"]["request"]["headers"]["Authorization"].startswith(
        "Bearer ***"
    )


def test_html_is_self_contained_and_lists_every_case(reports):
    summary, out, _ = reports
    html = (out / "report.html").read_text()
    for result in summary.results:
        assert f'id="{result.check.id}"' in html
    assert not re.search(r"<(script|link|img)\b", html)
    assert not re.search(r"(src|href)=\"https?://", html)
    assert "Not conformant" in html
    assert "Expected no 5xx, got HTTP 500" in html
    assert "&lt;" not in summary.results[0].check.title  # titles are plain text, escaped once


def test_console_shows_failures_and_the_verdict(reports):
    _summary, _out, text = reports
    assert "FAIL  DCI-ENV-001" in text
    assert "SKIP  DCI-SEARCH-005 graphql search is answered (feature `query_graphql` is" in text
    assert "NOT CONFORMANT" in text
    assert "POST http://127.0.0.1:" in text
