"""JSON report: the whole run, validated by `conformance/schemas/report.schema.json`."""

from __future__ import annotations

import json as _json
from pathlib import Path

from conformance.reporting import summary_to_dict
from conformance.runner import Event, RunFinished


class JsonReporter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            data = summary_to_dict(event.summary)
            self.path.write_text(_json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
