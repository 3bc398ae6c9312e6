"""Renders runner events in a terminal: a progress bar per step, a summary at the end."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from workbench.events import Event, Notice, StepFailed, StepFinished, StepStarted
from workbench.events import Progress as ProgressEvent
from workbench.report.blocks import Block, Table


class ConsoleRenderer:
    """An event listener; use as a context manager around the run so the live display is cleaned up."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[label]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ConsoleRenderer:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._task(event.step)
        elif isinstance(event, ProgressEvent):
            self._bars.update(self._task(event.step), completed=event.done, total=event.total, label=event.label)
        elif isinstance(event, StepFinished):
            task = self._task(event.step)
            total = self._bars.tasks[task].total or 1
            self._bars.update(task, completed=total, total=total, label=f"done in {event.seconds:.2f} s")
        elif isinstance(event, StepFailed):
            self._bars.update(self._task(event.step), label="[red]failed")
        elif isinstance(event, Notice):
            self.console.print(f"[yellow]note:[/] {event.text}", highlight=False)

    def _task(self, step: str) -> TaskID:
        if step not in self._tasks:
            self._tasks[step] = self._bars.add_task(step, total=None, label="")
        return self._tasks[step]


def render_tables(console: Console, blocks: list[Block]) -> None:
    """Print the table blocks of a report as rich tables (figures stay in report.html)."""
    for block in blocks:
        if isinstance(block, Table):
            table = RichTable(title=block.title, title_justify="left")
            for column in block.columns:
                table.add_column(column, justify="left" if column in ("site", "model", "party") else "right")
            for row in block.rows:
                table.add_row(*("" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value) for value in row))
            console.print(table)
