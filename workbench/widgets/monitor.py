"""The run monitor: a progress bar per step and per federated round, and live curves per round.

It is an event listener: pass it to `run_recipe(listeners=[monitor])`, or
replay a run directory with `RunMonitor.replay`. It accepts the runner's typed
events and their JSON form alike, folds them into a `RunState` (the reducer the
CLI, the sidebar and `workbench runs` share) and draws what the state says.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from workbench.events import Event, Metric, RunStarted, parse_event
from workbench.run_state import DATA_PHASE, RunState, Status, StepState, read_run
from workbench.widgets import svg
from workbench.widgets.html import MUTED

STATUS_CLASSES = {status: f"wb-run-{status.value}" for status in Status}
STATUS_COLORS = {Status.WAITING: "#888", Status.RUNNING: "#1976d2", Status.FINISHED: "#2e7d32", Status.FAILED: "#c62828", Status.INTERRUPTED: "#ef6c00"}
BAR_STYLES = {Status.WAITING: "", Status.RUNNING: "info", Status.FINISHED: "success", Status.FAILED: "danger", Status.INTERRUPTED: "warning"}


def _title(name: str, kind: str) -> str:
    extra = f" <span style='{MUTED}'>{escape(kind)}</span>" if kind and kind != name else ""
    return f"<b>{escape(name)}</b>{extra}"


class _StepRow:
    """One step's bar, and a second bar once the step reports federated rounds."""

    def __init__(self, name: str, kind: str = "") -> None:
        self.bar = widgets.FloatProgress(value=0, min=0, max=1, bar_style="", layout=widgets.Layout(width="260px"))
        self.title = widgets.HTML(_title(name, kind), layout=widgets.Layout(width="220px"))
        self.detail = widgets.HTML("", layout=widgets.Layout(width="260px"))
        self.rounds = widgets.FloatProgress(value=0, min=0, max=1, layout=widgets.Layout(width="260px"))
        self.rounds_detail = widgets.HTML("")
        self.rounds_row = widgets.HBox(
            [
                widgets.HTML(f"<span style='{MUTED}'>&nbsp;&nbsp;↳ federated rounds</span>", layout=widgets.Layout(width="220px")),
                self.rounds,
                self.rounds_detail,
            ],
            layout=widgets.Layout(display="none"),
        )
        self.box = widgets.VBox([widgets.HBox([self.title, self.bar, self.detail]), self.rounds_row])
        self.box.add_class("wb-step-row")


class RunMonitor(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types, so its VBox is Any to a checker
    """Live view of one run; call it with each event."""

    def __init__(self, title: str = "") -> None:
        self.status = widgets.HTML()
        self.status.add_class("wb-monitor-status")
        self.steps_box = widgets.VBox()
        self.curves = widgets.HTML(layout=widgets.Layout(display="none"))
        self.curves.add_class("wb-curves")
        super().__init__([self.status, self.steps_box, self.curves], layout=widgets.Layout(padding="4px 0"))
        self.add_class("wb-run-monitor")
        self._title = title
        self._rows: dict[str, _StepRow] = {}
        self.run = RunState()
        self._shown = Status.WAITING
        self._show_status()

    @property
    def state(self) -> str:
        """waiting, running, finished, failed or interrupted."""
        return self.run.status.value

    def __call__(self, event: Event | Mapping[str, Any]) -> None:
        event = parse_event(dict(event) if isinstance(event, Mapping) else event)
        changed = self.run.apply(event)
        if isinstance(event, RunStarted):  # every step gets its row up front, in recipe order
            self._title = self._title or self.run.recipe
            for name in self.run.steps:
                self._row(name)
        if changed is not None:
            self._show_step(self.run.steps[changed])
            if changed != DATA_PHASE and (data := self.run.steps.get(DATA_PHASE)) is not None:
                self._show_step(data)
        if isinstance(event, Metric):
            self._show_curves()
        self._show_status()

    @classmethod
    def replay(cls, run_dir: Path, title: str = "") -> RunMonitor:
        """A monitor showing a run directory (or its events.jsonl) as recorded so far, interrupted if its process died."""
        folder = run_dir.parent if run_dir.name.endswith(".jsonl") else run_dir
        monitor = cls(title)
        monitor.run = read_run(folder)
        monitor._title = monitor._title or monitor.run.recipe
        for step in monitor.run.steps.values():
            monitor._show_step(step)
        monitor._show_curves()
        monitor._show_status()
        return monitor

    # --- drawing what the state says ----------------------------------------------------------------

    def _show_step(self, step: StepState) -> None:
        row = self._row(step.name, step.kind)
        row.title.value = _title(step.name, step.kind)
        row.bar.value, row.bar.bar_style = step.fraction, BAR_STYLES[step.status]
        rounds = step.label.lower().startswith("round") or row.rounds_row.layout.display == "flex"
        if rounds and step.total:
            row.rounds_row.layout.display = "flex"
            row.rounds.value = step.fraction
            row.rounds.bar_style = "success" if step.status is Status.FINISHED else ""
            row.rounds_detail.value = f"{step.done}/{step.total} {escape(step.label)}"
        if step.status is Status.FINISHED and step.seconds is not None:
            row.detail.value = f"done in {step.seconds:.2f} s"
        elif step.status in (Status.FAILED, Status.INTERRUPTED):
            row.detail.value = f"<span style='color:{STATUS_COLORS[step.status]}'>{step.status.value}</span>"
        elif step.total:
            row.detail.value = f"{step.done}/{step.total} <span style='{MUTED}'>{escape(step.label)}</span>"
        elif step.status is Status.RUNNING and step.parties:
            row.detail.value = f"<span style='{MUTED}'>at {escape(', '.join(step.parties))}</span>"

    def _show_curves(self) -> None:
        if not self.run.curves:
            return
        self.curves.layout.display = "block"
        charts = [svg.line_chart(name, values, xlabel="round") for name, values in self.run.curves.items()]
        self.curves.value = "<div style='display:flex; flex-wrap:wrap; gap:12px'>" + "".join(charts) + "</div>"

    def _row(self, name: str, kind: str = "") -> _StepRow:
        if name not in self._rows:
            self._rows[name] = _StepRow(name, kind)
            self.steps_box.children = [*self.steps_box.children, self._rows[name].box]
        return self._rows[name]

    def _show_status(self) -> None:
        run, state = self.run, self.run.status
        self.status.remove_class(STATUS_CLASSES[self._shown])
        self._shown = state
        self.status.add_class(STATUS_CLASSES[state])
        text = {
            Status.WAITING: "waiting for the run to start",
            Status.RUNNING: f"running · recipe hash {run.recipe_hash[:12]} · {run.out_dir}",
            Status.FINISHED: f"finished in {run.seconds or 0:.1f} s · {run.out_dir}",
            Status.FAILED: f"failed at {run.error}" if run.error else "failed",
            Status.INTERRUPTED: f"interrupted · {run.error or 'stopped before it finished'} · {run.out_dir}",
        }[state]
        title = f"<b>{escape(self._title)}</b> · " if self._title else ""
        dot = f"<span style='color:{STATUS_COLORS[state]}; font-size:1.2em'>●</span>"
        self.status.value = (
            f"<div style='margin:2px 0 6px'>{dot} {title}<span class='wb-state'>{state.value}</span> <span style='{MUTED}'>· {escape(text)}</span></div>"
        )
