"""Self-contained HTML report: inline CSS, no scripts or external assets, every case listed
with its spec section and, for failures, the exact request and response."""

from __future__ import annotations

from pathlib import Path

import jinja2

from conformance.reporting import summary_to_dict
from conformance.runner import Event, RunFinished, RunSummary

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("conformance", "reporting/templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


def render(summary: RunSummary) -> str:
    data = summary_to_dict(summary)
    groups: dict[str, list[dict[str, object]]] = {}
    for case in data["cases"]:
        groups.setdefault(str(case["group"]), []).append(case)
    return _ENV.get_template("report.html.j2").render(run=data, groups=groups)


class HtmlReporter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.path.write_text(render(event.summary), encoding="utf-8")
