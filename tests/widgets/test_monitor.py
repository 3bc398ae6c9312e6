"""The run monitor follows the runner's events: bars per step and per round, curves, finished and failed states."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from workbench.events import Metric, Progress, RunFinished, RunInterrupted, RunStarted, StepFailed, StepFinished, StepStarted
from workbench.runner import RunResult
from workbench.widgets import RunMonitor


def test_replaying_a_finished_run_fills_every_step_bar(flagship_run: RunResult, flagship) -> None:
    monitor = RunMonitor.replay(flagship_run.out_dir / "events.jsonl")
    assert monitor.state == "finished"
    assert "wb-run-finished" in monitor.status._dom_classes
    names = flagship.step_names()
    assert [name for name in monitor._rows if name in names] == names
    for name in names:
        assert monitor._rows[name].bar.value == 1.0 and monitor._rows[name].bar.bar_style == "success"


def test_a_dp_run_draws_each_sites_epsilon_per_round(flagship_run: RunResult) -> None:
    monitor = RunMonitor.replay(flagship_run.out_dir / "events.jsonl")
    assert set(monitor.run.curves["epsilon (fl_dp)"]) == {"general_hospital", "county_hospital", "trauma_center"}
    assert "epsilon (fl_dp)" in monitor.curves.value


def test_round_progress_and_round_metrics_show_a_round_bar_and_curves() -> None:
    monitor = RunMonitor("fl")
    monitor(RunStarted(recipe="fl", recipe_hash="ab" * 32, out_dir="runs/x", steps=["fl_train"]))
    monitor(StepStarted(step="fl_train", kind="fl_train", index=0, total=1, parties=["a", "b"]))
    assert monitor.state == "running" and monitor.curves.layout.display == "none"
    for rnd in (1, 2, 3):
        monitor(Progress(step="fl_train", done=rnd, total=5, label=f"round {rnd}"))
        monitor(Metric(step="fl_train", name="loss", value=1.0 / rnd, round=rnd))
        monitor(Metric(step="fl_train", name="auc", value=0.6 + rnd / 100, party="a", round=rnd))
    row = monitor._rows["fl_train"]
    assert row.rounds_row.layout.display == "flex" and row.rounds.value == 3 / 5
    assert "3/5 round 3" in row.rounds_detail.value
    assert monitor.curves.layout.display == "block"
    assert monitor.curves.value.count("<svg") == 2 and "loss" in monitor.curves.value and "polyline" in monitor.curves.value


def test_two_trainings_of_one_recipe_draw_one_chart_each_with_a_curve_per_site() -> None:
    """Issue 19: the flagship's plain and encrypted trainings were merged into one curve per hospital."""
    monitor = RunMonitor("fl")
    for step, shift in (("fl_plain", 0.0), ("fl_ckks", 0.01)):
        for rnd in (1, 2):
            for site in ("a", "b"):
                monitor(Metric(step=step, name="auc", value=0.6 + shift + rnd / 100, party=site, round=rnd))
    assert {name: sorted(curves) for name, curves in monitor.run.curves.items()} == {"auc (fl_plain)": ["a", "b"], "auc (fl_ckks)": ["a", "b"]}
    assert all(len(points) == 2 for curves in monitor.run.curves.values() for points in curves.values())
    assert monitor.curves.value.count("<svg") == 2


def test_metrics_without_a_round_draw_no_curve() -> None:
    monitor = RunMonitor()
    monitor(Metric(step="evaluate", name="local.auc", value=0.7, party="a"))
    assert monitor.curves.value == ""


def test_a_failed_step_turns_the_monitor_red_with_the_error() -> None:
    monitor = RunMonitor()
    monitor({"type": "run_started", "recipe": "r", "recipe_hash": "0" * 64, "out_dir": "o", "steps": ["split"]})
    monitor(StepFailed(step="split", error="no column 'x' in table ehr"))
    assert monitor.state == "failed" and "wb-run-failed" in monitor.status._dom_classes
    assert "no column" in monitor.status.value and monitor._rows["split"].bar.bar_style == "danger"


def test_finishing_replaces_the_running_class() -> None:
    monitor = RunMonitor()
    monitor(RunStarted(recipe="r", recipe_hash="0" * 64, out_dir="o", steps=["s"]))
    monitor(StepFinished(step="s", seconds=0.5))
    monitor(RunFinished(out_dir="o", seconds=1.0))
    assert monitor.status._dom_classes.count("wb-run-finished") == 1 and "wb-run-running" not in monitor.status._dom_classes


def test_an_interrupted_run_shows_interrupted_and_stops_its_step() -> None:
    monitor = RunMonitor()
    monitor(RunStarted(recipe="r", recipe_hash="0" * 64, out_dir="o", steps=["s"]))
    monitor(StepStarted(step="s", kind="fl_train", index=0, total=1))
    monitor(RunInterrupted(phase="s"))
    assert monitor.state == "interrupted" and "wb-run-interrupted" in monitor.status._dom_classes
    assert monitor._rows["s"].bar.bar_style == "warning" and "interrupted" in monitor._rows["s"].detail.value


def test_replaying_a_run_whose_process_died_shows_it_interrupted(tmp_path: Path) -> None:
    """Issue 11: a run whose process was killed without a last word is interrupted, never running forever."""
    events = [RunStarted(recipe="r", recipe_hash="0" * 64, out_dir="o", steps=["s"]), StepStarted(step="s", kind="split", index=0, total=1)]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (tmp_path / "status.json").write_text(json.dumps({"status": "running", "step": "s", "pid": int(dead.stdout)}))
    monitor = RunMonitor.replay(tmp_path)
    assert monitor.state == "interrupted" and "is gone without a last word" in monitor.status.value
