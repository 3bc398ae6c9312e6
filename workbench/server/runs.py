"""Headless runs started from the sidebar: one `workbench run` subprocess each, watched through its files.

A subprocess keeps a long run from stalling the Jupyter server and survives
a failing step without a trace in the server. The runner writes events.jsonl
as it goes, so the panel's status comes from the run directory itself, and a
run started from the CLI or a notebook into the same runs/ shows up too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.recipe import load_recipe
from workbench.widgets.scores import key_metrics
from workbench.widgets.session import default_run_dir

LOGS = ".logs"


class RunManager:
    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self, recipe_file: Path) -> str:
        """Start `workbench run` on a recipe into a fresh run directory; return the run's id (its folder name)."""
        recipe = load_recipe(recipe_file)
        out = default_run_dir(recipe, self.runs_dir)
        (self.runs_dir / LOGS).mkdir(parents=True, exist_ok=True)
        with (self.runs_dir / LOGS / f"{out.name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "workbench", "run", str(recipe_file), "--out", str(out)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=recipe_file.parent,
            )
        with self._lock:
            self._processes[out.name] = process
        return out.name

    def wait(self, run_id: str, timeout: float | None = None) -> int | None:
        """Wait for a run this server started; for tests and shutdown."""
        process = self._processes.get(run_id)
        return process.wait(timeout) if process else None

    def run_dir(self, run_id: str) -> Path:
        folder = (self.runs_dir / run_id).resolve()
        if folder.parent != self.runs_dir.resolve() or not folder.is_dir():
            raise FileNotFoundError(f"no run {run_id!r} in {self.runs_dir}")
        return folder

    def summaries(self) -> list[dict[str, Any]]:
        """Every run under runs/, newest first; runs still starting up (no folder yet) included."""
        ids = {p.name for p in self.runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")} if self.runs_dir.is_dir() else set()
        ids |= set(self._processes)
        summaries = [self.summary(run_id) for run_id in ids]
        return sorted(summaries, key=lambda s: s["started"], reverse=True)

    def summary(self, run_id: str) -> dict[str, Any]:
        folder = self.runs_dir / run_id
        events = _events(folder / "events.jsonl")
        process = self._processes.get(run_id)
        alive = process is not None and process.poll() is None
        summary: dict[str, Any] = {
            "id": run_id, "recipe": run_id.rsplit("-", 3)[0], "status": "running" if alive else "interrupted",
            "started": _started(folder), "seconds": None, "progress": None, "error": None, "metrics": [],
            "report": (folder / "report.html").is_file(),
        }
        steps: list[str] = []
        for event in events:
            kind = event.get("type")
            if kind == "run_started":
                summary["recipe"], steps = event["recipe"], event.get("steps", [])
            elif kind == "step_started":
                summary["progress"] = {"step": event["step"], "index": event["index"], "steps": event["total"], "done": 0, "total": 1, "label": ""}
            elif kind == "progress" and summary["progress"] and event["step"] == summary["progress"]["step"]:
                summary["progress"].update(done=event["done"], total=event["total"], label=event.get("label", ""))
            elif kind == "step_failed":
                summary["status"], summary["error"] = "failed", f"{event['step']}: {event['error']}"
            elif kind == "run_finished":
                summary["status"], summary["seconds"] = "finished", event["seconds"]
        if summary["status"] == "interrupted" and process is not None and process.returncode:
            summary["status"], summary["error"] = "failed", summary["error"] or _log_tail(self.runs_dir / LOGS / f"{run_id}.log")
        if summary["status"] == "finished" and (folder / "metrics.json").is_file():
            metrics = json.loads((folder / "metrics.json").read_text())
            summary["metrics"] = [{"label": label, "value": value} for label, value in key_metrics(metrics)]
        if summary["progress"] is None and steps:
            summary["progress"] = {"step": "data", "index": 0, "steps": len(steps), "done": 0, "total": 1, "label": "loading data"}
        return summary


def _events(path: Path) -> list[dict[str, Any]]:
    """Complete lines only: the runner may be half-way through writing the last one."""
    try:
        text = path.read_text()
    except OSError:
        return []
    events = []
    for line in text.split("\n")[:-1] if not text.endswith("\n") else text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def _started(folder: Path) -> str:
    try:
        marker = folder / "recipe.yaml" if (folder / "recipe.yaml").exists() else folder
        return datetime.fromtimestamp(marker.stat().st_mtime).isoformat(timespec="seconds")
    except OSError:
        return datetime.now().isoformat(timespec="seconds")


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "the run process exited without writing its events"
