"""The run monitor: a progress bar per step and per federated round, and live curves per round.

It is an event listener: pass it to `run_recipe(listeners=[monitor])`, or
replay a run directory's events.jsonl with `RunMonitor.replay`. It accepts
the runner's typed events and their JSON form alike, so a run started by the
Jupyter server or the CLI can be watched the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from workbench.events import Event
from workbench.runner import DATA_PHASE
from workbench.widgets import svg
from workbench.widgets.html import MUTED

STATUS_CLASSES = {"waiting": "wb-run-waiting", "running": "wb-run-running", "finished": "wb-run-finished", "failed": "wb-run-failed"}
STATUS_COLORS = {"waiting": "#888", "running": "#1976d2", "finished": "#2e7d32", "failed": "#c62828"}


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


class RunMonitor(widgets.VBox):
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
        self._series: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self._state = "waiting"
        self._set_status("waiting", "waiting for the run to start")

    @property
    def state(self) -> str:
        """waiting, running, finished or failed."""
        return self._state

    def __call__(self, event: Event | Mapping[str, Any]) -> None:
        data = event.to_dict() if isinstance(event, Event) else dict(event)
        handler = getattr(self, f"_on_{data.get('type')}", None)
        if handler is not None:
            handler(data)

    @classmethod
    def replay(cls, events_path: Path, title: str = "") -> RunMonitor:
        """A monitor showing a run directory's events.jsonl as recorded so far."""
        monitor = cls(title)
        for line in Path(events_path).read_text().splitlines():
            if line.strip():
                monitor(json.loads(line))
        return monitor

    # --- event handlers, by event type ---------------------------------------------------------

    def _on_run_started(self, e: dict[str, Any]) -> None:
        self._title = self._title or e["recipe"]
        self._row(DATA_PHASE, "loading each party's data")
        for name in e.get("steps", []):
            self._row(name)
        self._set_status("running", f"running · recipe hash {e['recipe_hash'][:12]} · {e['out_dir']}")

    def _on_step_started(self, e: dict[str, Any]) -> None:
        if e.get("index") == 0 and DATA_PHASE in self._rows:
            self._rows[DATA_PHASE].bar.value, self._rows[DATA_PHASE].bar.bar_style = 1.0, "success"
        row = self._row(e["step"], e.get("kind", ""))
        row.title.value = _title(e["step"], e.get("kind", ""))
        row.bar.bar_style = "info"
        row.detail.value = f"<span style='{MUTED}'>at {', '.join(e.get('parties', []))}</span>"

    def _on_progress(self, e: dict[str, Any]) -> None:
        row = self._row(e["step"])
        fraction = e["done"] / e["total"] if e["total"] else 0.0
        label = str(e.get("label", ""))
        if label.lower().startswith("round"):
            row.rounds_row.layout.display = "flex"
            row.rounds.value = fraction
            row.rounds_detail.value = f"{e['done']}/{e['total']} {label}"
        row.bar.value = fraction
        row.detail.value = f"{e['done']}/{e['total']} <span style='{MUTED}'>{label}</span>"

    def _on_metric(self, e: dict[str, Any]) -> None:
        if e.get("round") is None:
            return
        series = self._series.setdefault(e["name"], {})
        series.setdefault(e.get("party") or "all", []).append((float(e["round"]), float(e["value"])))
        self.curves.layout.display = "block"
        charts = [svg.line_chart(name, values, xlabel="round") for name, values in self._series.items()]
        self.curves.value = "<div style='display:flex; flex-wrap:wrap; gap:12px'>" + "".join(charts) + "</div>"

    def _on_step_finished(self, e: dict[str, Any]) -> None:
        row = self._row(e["step"])
        row.bar.value, row.bar.bar_style = 1.0, "success"
        if row.rounds_row.layout.display == "flex":
            row.rounds.value, row.rounds.bar_style = 1.0, "success"
        row.detail.value = f"done in {e['seconds']:.2f} s"

    def _on_step_failed(self, e: dict[str, Any]) -> None:
        row = self._row(e["step"])
        row.bar.bar_style = "danger"
        row.detail.value = f"<span style='color:{STATUS_COLORS['failed']}'>failed</span>"
        self._set_status("failed", f"step {e['step']!r} failed: {e['error']}")

    def _on_run_finished(self, e: dict[str, Any]) -> None:
        self._set_status("finished", f"finished in {e['seconds']:.1f} s · {e['out_dir']}")

    # --- helpers ---------------------------------------------------------------------------------

    def _row(self, name: str, kind: str = "") -> _StepRow:
        if name not in self._rows:
            self._rows[name] = _StepRow(name, kind)
            self.steps_box.children = [*self.steps_box.children, self._rows[name].box]
        return self._rows[name]

    def _set_status(self, state: str, text: str) -> None:
        self.status.remove_class(STATUS_CLASSES[self._state])
        self._state = state
        self.status.add_class(STATUS_CLASSES[state])
        title = f"<b>{escape(self._title)}</b> · " if self._title else ""
        dot = f"<span style='color:{STATUS_COLORS[state]}; font-size:1.2em'>●</span>"
        self.status.value = (
            f"<div style='margin:2px 0 6px'>{dot} {title}<span class='wb-state'>{state}</span> <span style='{MUTED}'>· {escape(text)}</span></div>"
        )
