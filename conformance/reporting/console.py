"""Console report: a progress bar (on terminals), one line per case, failures with their
evidence summary, and a totals table per group."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from conformance.evidence import redact_body
from conformance.runner import (
    CaseFinished,
    CaseResult,
    CaseStarted,
    Event,
    Outcome,
    RunFinished,
    RunStarted,
    RunSummary,
)

_STYLE = {
    Outcome.PASSED: ("PASS", "green"),
    Outcome.FAILED: ("FAIL", "bold red"),
    Outcome.SKIPPED: ("SKIP", "yellow"),
    Outcome.ERROR: ("ERROR", "bold magenta"),
}


class ConsoleReporter:
    def __init__(
        self, file: IO[str] | None = None, *, verbose: bool = False, color: bool | None = None
    ) -> None:
        self.console = Console(file=file, highlight=False, no_color=color is False, soft_wrap=True)
        self.verbose = verbose
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.console.print(
                f"[bold]dci-conformance[/] {event.profile} profile against {escape(event.target)} "
                f"({len(event.cases)} cases, schemas: {escape(event.schema_source)})"
            )
            if self.console.is_terminal:
                self._progress = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=self.console,
                    transient=True,
                )
                self._progress.start()
                self._task = self._progress.add_task("running", total=len(event.cases))
        elif isinstance(event, CaseStarted):
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, description=event.check.id)
        elif isinstance(event, CaseFinished):
            self._case(event.result)
            if self._progress is not None and self._task is not None:
                self._progress.advance(self._task)
        elif isinstance(event, RunFinished):
            if self._progress is not None:
                self._progress.stop()
            self._summary(event.summary)

    def _case(self, result: CaseResult) -> None:
        label, style = _STYLE[result.outcome]
        line = f"[{style}]{label:5}[/] {result.check.id} {escape(result.check.title)}"
        if result.outcome is Outcome.SKIPPED:
            line += f" [dim]({escape(result.skip_reason or '')})[/]"
        self.console.print(line, markup=True)
        for failure in result.failures:
            self.console.print(
                f"      [{failure.severity}] {failure.message}", style="red", markup=False
            )
            if failure.exchange is not None:
                self.console.print(f"      {failure.exchange.summary()}", style="dim", markup=False)
                if self.verbose:
                    sent = redact_body(failure.exchange.request_body)[:2000]
                    got = redact_body(failure.exchange.response_body)[:2000]
                    self.console.print(f"      request:  {sent}", markup=False)
                    self.console.print(f"      response: {got}", markup=False)
        if result.error:
            self.console.print(
                f"      {result.error.splitlines()[0]}", style="magenta", markup=False
            )
        for warning in result.warnings:
            self.console.print(f"      warning: {warning}", style="yellow", markup=False)

    def _summary(self, summary: RunSummary) -> None:
        table = Table(title="Results by group")
        table.add_column("group")
        for outcome in Outcome:
            table.add_column(str(outcome), justify="right")
        groups: dict[str, list[CaseResult]] = {}
        for result in summary.results:
            groups.setdefault(result.check.group, []).append(result)
        for group, items in groups.items():
            table.add_row(group, *(str(sum(r.outcome is o for r in items)) for o in Outcome))
        self.console.print(table)
        totals = ", ".join(f"{summary.count(o)} {o}" for o in Outcome)
        verdict = "[bold green]CONFORMANT[/]" if summary.ok else "[bold red]NOT CONFORMANT[/]"
        self.console.print(f"{verdict}: {totals} in {summary.duration_s:.1f} s")
