"""Renders a run in a terminal: a progress bar a step, drawn from the run state the other faces share."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from workbench.events import Event, Notice
from workbench.run_state import DATA_PHASE, RunState, Status, StepState


class ConsoleRenderer:
    """An event listener; use as a context manager around the run so the live display is cleaned up."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.run = RunState()
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
        changed = self.run.apply(event)
        if isinstance(event, Notice):
            self.console.print(f"[yellow]note:[/] {event.text}", highlight=False)
        if changed is not None and changed != DATA_PHASE:
            self._show(self.run.steps[changed])

    def _show(self, step: StepState) -> None:
        if step.name not in self._tasks:
            self._tasks[step.name] = self._bars.add_task(step.name, total=None, label="")
        task = self._tasks[step.name]
        if step.status is Status.FINISHED:
            total = self._bars.tasks[task].total or 1
            self._bars.update(task, completed=total, total=total, label=f"done in {step.seconds or 0:.2f} s")
        elif step.status in (Status.FAILED, Status.INTERRUPTED):
            self._bars.update(task, label=f"[red]{step.status.value}")
        elif step.total:
            self._bars.update(task, completed=step.done, total=step.total, label=step.label)
