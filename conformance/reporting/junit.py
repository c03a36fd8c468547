"""JUnit XML report: a testsuite per group, a testcase per case, evidence in the failure text."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from conformance.runner import CaseResult, Event, Outcome, RunFinished


def _evidence(result: CaseResult) -> str:
    lines: list[str] = []
    for failure in result.failures:
        lines.append(f"[{failure.severity}] {failure.title}: {failure.message}")
        if failure.expected:
            lines.append(f"expected: {failure.expected}")
        if failure.exchange is not None:
            lines.append(json.dumps(failure.exchange.to_dict(), indent=2, ensure_ascii=False))
    if result.error:
        lines.append(result.error)
    return "\n".join(lines)


def render(results: list[CaseResult], duration_s: float, name: str = "dci-conformance") -> bytes:
    root = ET.Element("testsuites", name=name, time=f"{duration_s:.3f}")
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        groups.setdefault(result.check.group, []).append(result)
    for group, items in groups.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=group,
            tests=str(len(items)),
            failures=str(sum(r.outcome is Outcome.FAILED for r in items)),
            errors=str(sum(r.outcome is Outcome.ERROR for r in items)),
            skipped=str(sum(r.outcome is Outcome.SKIPPED for r in items)),
            time=f"{sum(r.duration_s for r in items):.3f}",
        )
        for result in items:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"dci.{group}",
                name=f"{result.check.id} {result.check.title}",
                time=f"{result.duration_s:.3f}",
            )
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="spec", value=result.check.spec)
            if result.outcome is Outcome.FAILED:
                first = result.failures[0]
                node = ET.SubElement(
                    case, "failure", message=first.message[:500], type=str(first.severity)
                )
                node.text = _evidence(result)
            elif result.outcome is Outcome.ERROR:
                node = ET.SubElement(
                    case, "error", message=(result.error or "")[:500], type="error"
                )
                node.text = _evidence(result)
            elif result.outcome is Outcome.SKIPPED:
                ET.SubElement(case, "skipped", message=result.skip_reason or "")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


class JUnitReporter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.path.write_bytes(render(event.summary.results, event.summary.duration_s))
