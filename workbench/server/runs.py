"""Headless runs started from the sidebar: one `workbench run` subprocess each, watched through its files.

A subprocess keeps a long run from stalling the Jupyter server and survives
a failing step without a trace in the server. The runner writes events.jsonl
as it goes, so the panel's status comes from the run directory itself, and a
run started from the CLI or a notebook into the same runs/ shows up too.

Runs started here stay within the server's budgets (`limits.WorkbenchLimits`):
a cap on runs at once, the recipe-size and dataset-row budgets checked before
the start, and memory (RLIMIT_DATA) and CPU limits set in the child. Each run is
its own session and process group, so a cancel, or the server's shutdown,
stops it and every worker it spawned.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.recipe import RecipeError, parse_recipe
from workbench.recipe_problems import locate_lines
from workbench.report.scores import key_metrics
from workbench.run_state import DATA_PHASE, ENDED, EVENTS_FILE, STATUS_FILE, SWEEP_FILE, EventTail, RunState, Status, read_run, run_folders
from workbench.runner import default_run_dir
from workbench.server.limits import WorkbenchLimits, dataset_problems, how_to_raise
from workbench.server.workspace import RecipeFile, Workspace, WorkspaceError

LOGS = ".logs"
RUN_ID = re.compile(r"-[0-9a-f]{8}-\d{8}-\d{6}(-[0-9a-f]{8})?(-\d+)?$")
"""What follows the recipe's name in a run's id: NAME-HASH-DATE-TIME-RANDOM (no RANDOM before it was added), and -N
when the server had to tell two apart."""
ERROR_LOG = "error.log"
CANCELLED = "cancelled from the sidebar"
MEMORY_SIGNALS = {signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS}
"""How a process dies when an allocation fails under the limit outside Python: Rust and C++ abort, C may crash, the kernel kills."""
MEMORY_MARKERS = ("MemoryError", "memory allocation of", "std::bad_alloc", "Cannot allocate memory", "failed to allocate", "out of memory")
"""What the log or error.log of a run says when an allocation failed: Python, Rust (polars), C++ (tenseal) and libc wording."""


class RunRefused(Exception):
    """A start or cancel the server will not do now; `status` is the HTTP status the handler answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RunManager:
    def __init__(self, workspace: Workspace, limits: WorkbenchLimits | None = None) -> None:
        self.workspace = workspace
        self.limits = limits if limits is not None else WorkbenchLimits()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._tails: dict[str, EventTail] = {}
        self._ended: dict[str, tuple[tuple[float, ...], dict[str, Any]]] = {}
        """Summaries of ended runs this server does not run, by the stat of the files they came from: unchanged, not re-read."""
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._listing = threading.RLock()
        """Summaries come from worker threads (the handlers run them off the loop): one at a time, as the caches need."""
        atexit.register(self.stop_all)  # in their own sessions, runs would outlive the server (and its cap) otherwise

    @property
    def runs_dir(self) -> Path:
        return self.workspace.runs_dir

    def start(self, recipe: RecipeFile) -> str:
        """Start `workbench run` on a recipe into a fresh run directory, within the budgets; return the run's id (its folder name)."""
        text = self.workspace.recipe_text(recipe.file)
        parsed = parse_recipe(text, str(recipe.file))
        problems = dataset_problems(parsed, self.limits)
        if problems:
            raise RecipeError(str(recipe.file), locate_lines(text, problems))
        with self._lock:
            running = self.running()
            if self.limits.max_concurrent_runs and len(running) >= self.limits.max_concurrent_runs:
                raise RunRefused(
                    429,
                    (
                        f"this server already runs {len(running)} of at most {self.limits.max_concurrent_runs} runs at once ({', '.join(running)}); "
                        f"wait for one to finish or cancel it, or raise the limit ({how_to_raise('max_concurrent_runs')})"
                    ),
                )
            logs = self.workspace.make_dir(self.runs_dir / LOGS)
            out = self._new_run_dir(default_run_dir(parsed, self.runs_dir))
            with self.workspace.open_for_write(logs / f"{out.name}.log", new=True) as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "workbench", "run", str(recipe.file), "--out", str(out)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=recipe.file.parent,
                    start_new_session=True,  # its own process group: a cancel reaches the workers it spawned too
                    preexec_fn=self.limits.preexec(),  # only setrlimit runs between fork and exec
                )
            self._processes[out.name] = process
        return out.name

    def _new_run_dir(self, wanted: Path) -> Path:
        """Create the run directory before the run starts, so nothing planted at its name is written into; -2, -3, ... when the
        same recipe was started within the same second."""
        candidates = (wanted.with_name(f"{wanted.name}-{n}") if n > 1 else wanted for n in range(1, 100))
        free = next((c for c in candidates if not os.path.lexists(c)), None)
        if free is None:
            raise RunRefused(409, f"{wanted.name} and 98 more run directories like it exist already; start the run again in a second")
        return self.workspace.make_dir(free, new=True)

    def running(self) -> list[str]:
        """Ids of the runs this server started that are still running: a process that only prints its results after
        run_finished (or its error after step_failed) shows as ended in the sidebar, so it does not count against the cap."""
        return [run_id for run_id, process in self._processes.items() if process.poll() is None and self.summary(run_id)["status"] == "running"]

    def cancel(self, run_id: str) -> None:
        """Stop a run this server started: SIGTERM to its process group, SIGKILL after the grace period; blocks until it is gone."""
        with self._lock:
            process = self._processes.get(run_id)
            if process is None:
                raise RunRefused(
                    404,
                    f"run {run_id!r} was not started by this server, so it cannot cancel it; stop it where it was started "
                    "(Ctrl-C in its terminal, or interrupt its notebook's kernel)",
                )
            if process.poll() is not None:
                raise RunRefused(409, f"run {run_id!r} is not running any more ({self.summary(run_id)['status']})")
            self._cancelled.add(run_id)
        self._stop([process])

    def stop_all(self) -> None:
        """Cancel every run still running; at server shutdown."""
        with self._lock:
            alive = [run_id for run_id, process in self._processes.items() if process.poll() is None]
            self._cancelled.update(alive)
        self._stop([self._processes[run_id] for run_id in alive])

    def _stop(self, processes: list[subprocess.Popen[bytes]]) -> None:
        """SIGTERM lets the runner mark the run interrupted and its steps clean up; SIGKILL then reaps the group whatever is left."""
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(self.limits.cancel_grace_s)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)  # also workers that outlived their parent
            process.wait()

    def wait(self, run_id: str, timeout: float | None = None) -> int | None:
        """Wait for a run this server started; for tests and shutdown."""
        process = self._processes.get(run_id)
        return process.wait(timeout) if process else None

    def run_dir(self, run_id: str) -> Path:
        """runs/<run_id> as a real folder of the workspace's runs/, or runs/<sweep>/<label> inside a sweep's folder: an id
        like ../.. or a link that leads elsewhere names no run."""
        folder: Path | None
        try:
            folder, runs = self.workspace.inside(self.runs_dir / run_id, run_id), self.workspace.inside(self.runs_dir)
        except WorkspaceError:
            folder = runs = None
        in_sweep = folder is not None and folder.parent.parent == runs and (folder.parent / SWEEP_FILE).is_file()
        if folder is None or (folder.parent != runs and not in_sweep) or not folder.is_dir():
            raise FileNotFoundError(f"no run {run_id!r} in {self.runs_dir}")
        return folder

    def summaries(self) -> list[dict[str, Any]]:
        """Every run under runs/, newest first, a sweep's runs (runs/SWEEP/LABEL) among them; runs still starting up (no
        folder yet) included."""
        ids = {run_id for run_id, _ in run_folders(self.runs_dir)} | set(self._processes)
        summaries = [self.summary(run_id) for run_id in ids]
        return sorted(summaries, key=lambda s: s["started"], reverse=True)

    def summary(self, run_id: str) -> dict[str, Any]:
        """What the runs list shows of a run: the state the shared reducer folds from its events, and what this server
        knows besides of the runs it started (cancelled, over a budget, or dead with only a log to show).

        Each run's events are folded incrementally (`EventTail`), and an ended run's summary is kept until one of its
        files changes, so a poll costs a few `stat`s per run; a running run is looked at afresh, so that a process that
        died is seen to have."""
        folder = self.runs_dir / run_id
        process = self._processes.get(run_id)
        key = _files_key(folder)
        with self._listing:
            cached = self._ended.get(run_id)
            if process is None and cached is not None and cached[0] == key:
                return cached[1]
            summary = self._summarize(run_id, folder, process)
            if process is None and summary["status"] in {status.value for status in ENDED}:
                self._ended[run_id] = (key, summary)
            return summary

    def _summarize(self, run_id: str, folder: Path, process: subprocess.Popen[bytes] | None) -> dict[str, Any]:
        alive = process is not None and process.poll() is None
        tail = self._tails.setdefault(run_id, EventTail(folder / EVENTS_FILE))
        state = tail.update().model_copy(deep=True) if alive else read_run(folder, tail)
        if alive and state.status is Status.WAITING:
            state.status = Status.RUNNING  # started, and still loading Python: no event yet
        if not alive and process is not None and state.status is not Status.FINISHED:
            if run_id in self._cancelled:
                state.interrupted(CANCELLED)
                state.error = CANCELLED
            elif process.returncode:
                log = _log_tail(self.runs_dir / LOGS / f"{run_id}.log")
                budget = self._budget_exceeded(process.returncode, [log, _log_tail(folder / ERROR_LOG)], state)
                state.status, state.error = Status.FAILED, budget or (state.error if state.status is Status.FAILED else None) or log
        index, steps = state.position
        current = state.steps.get(state.current) if state.current else None
        summary: dict[str, Any] = {
            "id": run_id,
            "recipe": state.recipe or RUN_ID.sub("", run_id),
            "status": state.status.value,
            "started": state.started or _started(folder),
            "seconds": state.seconds,
            "progress": None
            if current is None
            else {"step": current.name, "index": index, "steps": steps, "done": current.done, "total": current.total or 1, "label": current.label},
            "error": state.error,
            "metrics": [],
            "report": (folder / "report.html").is_file(),
            "sweep": _sweep_of(self.runs_dir, run_id),
        }
        if state.status is Status.FINISHED and (folder / "metrics.json").is_file():
            metrics = json.loads((folder / "metrics.json").read_text())
            summary["metrics"] = [{"label": label, "value": value} for label, value in key_metrics(metrics)]
        return summary

    def _budget_exceeded(self, returncode: int, logs: list[str], state: RunState) -> str | None:
        """Why a run died, when it was the memory or CPU budget: a MemoryError, a failed allocation or the signal that follows one."""
        where = f" in {state.current}" if state.current not in (None, DATA_PHASE) else " while loading data"
        if self.limits.cpu_time_limit_s and -returncode == signal.SIGXCPU:
            return (
                f"CPU-time budget of {self.limits.cpu_time_limit_s} s exceeded{where}; run it in a terminal with `workbench run`, "
                f"or raise the budget ({how_to_raise('cpu_time_limit_s')})"
            )
        if self.limits.memory_bytes and (-returncode in MEMORY_SIGNALS or any(marker in text for text in logs for marker in MEMORY_MARKERS)):
            return (
                f"memory budget of {self.limits.memory_limit_gib:g} GiB exceeded{where}; use smaller datasets, run it in a terminal "
                f"with `workbench run`, or raise the budget ({how_to_raise('memory_limit_gib')})"
            )
        return None


def _sweep_of(runs_dir: Path, run_id: str) -> dict[str, Any] | None:
    """For a run inside a sweep's folder (id SWEEP/LABEL): the sweep's id, the variant's label and the swept path, so the
    sidebar shows a sweep's runs as one group; None for any other run."""
    sweep_id, sep, label = run_id.partition("/")
    if not sep:
        return None
    try:  # written whole by os.replace, but it may be gone or foreign: the grouping needs only the folder's name
        record = json.loads((runs_dir / sweep_id / SWEEP_FILE).read_text())
    except (OSError, ValueError):
        record = {}
    path = record.get("path") if isinstance(record, dict) and isinstance(record.get("path"), str) else None
    return {"id": sweep_id, "label": label, "path": path}


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _files_key(folder: Path) -> tuple[float, ...]:
    """What changes when a run directory's summary may: the size and time of its events, status, metrics and report."""
    key: list[float] = []
    for name in (EVENTS_FILE, STATUS_FILE, "metrics.json", "report.html"):
        try:
            stat = (folder / name).stat()
            key += [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        except OSError:
            key += [-1, -1, -1]
    return tuple(key)


def _started(folder: Path) -> str:
    """For event logs older than RunStarted's `started`: the time recipe.yaml was written."""
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
