"""Reporters: independent consumers of run events (console, JUnit XML, JSON, HTML)."""

from __future__ import annotations

from typing import Any

from conformance.runner import CaseResult, RunSummary


def result_to_dict(result: CaseResult) -> dict[str, Any]:
    """One case's result as plain data (the JSON report's `cases[]` item)."""
    item = result.check
    return {
        "id": item.id,
        "title": item.title,
        "group": item.group,
        "profile": str(item.profile),
        "spec": item.spec,
        "description": item.doc,
        "outcome": str(result.outcome),
        "severity": str(result.severity) if result.severity else None,
        "duration_s": round(result.duration_s, 3),
        "skip_reason": result.skip_reason,
        "error": result.error,
        "warnings": list(result.warnings),
        "failures": [
            {
                "title": f.title,
                "message": f.message,
                "severity": str(f.severity),
                "expected": f.expected,
                "exchange": f.exchange.to_dict() if f.exchange else None,
            }
            for f in result.failures
        ],
        "exchanges": [e.to_dict() for e in result.exchanges],
    }


def summary_to_dict(summary: RunSummary) -> dict[str, Any]:
    """The whole run as plain data (the JSON report)."""
    from conformance import __version__
    from conformance.runner import Outcome

    return {
        "tool": "dci-conformance",
        "version": __version__,
        "run_id": summary.run_id,
        "target": summary.target,
        "profile": summary.profile,
        "started_at": summary.started_at,
        "duration_s": round(summary.duration_s, 3),
        "totals": {str(o): summary.count(o) for o in Outcome} | {"total": len(summary.results)},
        "ok": summary.ok,
        "cases": [result_to_dict(r) for r in summary.results],
    }
