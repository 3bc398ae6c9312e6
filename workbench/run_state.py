"""The state of a run, folded from its events: one reducer for the CLI, the widgets, the sidebar and `workbench runs`.

Every face that shows a run (the terminal's progress bars, the notebook monitor, the lab's runs list, `workbench
runs`) applies the same events to a `RunState`, so they cannot disagree on what a run is doing. A run directory
adds what events alone cannot say: status.json names the process that wrote it, and a run whose process died
without a last word (SIGKILL, a kernel restart, a power cut) is `interrupted`, never `running` forever.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from workbench.events import (
    Event,
    Metric,
    Notice,
    Progress,
    RunFailed,
    RunFinished,
    RunInterrupted,
    RunStarted,
    StepFailed,
    StepFinished,
    StepStarted,
    parse_lines,
)

DATA_PHASE = "data"
"""The phase before the first step, while each party's data loads; events and errors name it like a step."""
STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
SWEEP_FILE = "sweep.json"
"""Marks a folder of a sweep's runs (`workbench run --sweep`), one run directory a variant: runs lists look inside it."""


class Status(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


ENDED = (Status.FINISHED, Status.FAILED, Status.INTERRUPTED)


class StepState(BaseModel):
    name: str
    kind: str = ""
    status: Status = Status.WAITING
    parties: list[str] = Field(default_factory=list)
    done: int = 0
    total: int = 0
    label: str = ""
    seconds: float | None = None
    error: str | None = None

    @property
    def fraction(self) -> float:
        if self.status is Status.FINISHED:
            return 1.0
        return self.done / self.total if self.total else 0.0


def curve_name(step: str, metric: str) -> str:
    return f"{metric} ({step})"


class RunState(BaseModel):
    status: Status = Status.WAITING
    recipe: str = ""
    recipe_hash: str = ""
    out_dir: str = ""
    started: str | None = None
    """When the run started, as its first event says (None in event logs older than that field)."""
    steps: dict[str, StepState] = Field(default_factory=dict)
    """The data phase first, then every step of the recipe in order."""
    current: str | None = None
    seconds: float | None = None
    error: str | None = None
    user_error: bool = True
    notices: list[str] = Field(default_factory=list)
    curves: dict[str, dict[str, list[tuple[float, float]]]] = Field(default_factory=dict)
    """`curve_name(step, metric)` -> party (or "all") -> (round, value), for the metrics steps report per round: one
    chart per step, so that plain, DP and encrypted trainings of one recipe are never merged into one curve."""

    def apply(self, event: Event) -> str | None:
        """Fold one event in; return the name of the step (or phase) it changed, if any."""
        if isinstance(event, RunStarted):
            self.status, self.recipe, self.recipe_hash, self.out_dir = Status.RUNNING, event.recipe, event.recipe_hash, event.out_dir
            self.started = event.started
            self.steps = {DATA_PHASE: StepState(name=DATA_PHASE, kind="data", status=Status.RUNNING, label="loading each party's data")}
            self.steps |= {name: StepState(name=name) for name in event.steps}
            self.current = DATA_PHASE
            return DATA_PHASE
        if isinstance(event, StepStarted):
            if (data := self.steps.get(DATA_PHASE)) is not None and data.status is Status.RUNNING:
                data.status = Status.FINISHED
            step = self._step(event.step)
            step.kind, step.parties, step.status = event.kind, event.parties, Status.RUNNING
            self.current = event.step
            return event.step
        if isinstance(event, Progress):
            step = self._step(event.step)
            step.done, step.total, step.label = event.done, event.total, event.label
            return event.step
        if isinstance(event, Metric):
            if event.round is not None:
                self.curves.setdefault(curve_name(event.step, event.name), {}).setdefault(event.party or "all", []).append((float(event.round), event.value))
            return None
        if isinstance(event, StepFinished):
            step = self._step(event.step)
            step.status, step.seconds = Status.FINISHED, event.seconds
            return event.step
        if isinstance(event, StepFailed):
            step = self._step(event.step)
            step.status, step.error = Status.FAILED, event.error
            self.status, self.error = Status.FAILED, f"{event.step}: {event.error}"
            return event.step
        if isinstance(event, RunFailed):
            self.status, self.user_error = Status.FAILED, event.user_error
            self.error = self.error or f"{event.phase}: {event.error}"
            return self._end(event.phase, Status.FAILED)
        if isinstance(event, RunInterrupted):
            self.status = Status.INTERRUPTED
            return self._end(event.phase, Status.INTERRUPTED)
        if isinstance(event, RunFinished):
            self.status, self.seconds, self.current = Status.FINISHED, event.seconds, None
            return None
        if isinstance(event, Notice):
            self.notices.append(event.text)
        return None

    def interrupted(self, why: str) -> None:
        """What a run is when its process is gone without a last event."""
        self.status = Status.INTERRUPTED
        self.error = self.error or why
        if self.current is not None:
            self._end(self.current, Status.INTERRUPTED)

    @property
    def position(self) -> tuple[int, int]:
        """(the current step's number, the number of steps): the data phase counts as step 0."""
        names = [name for name in self.steps if name != DATA_PHASE]
        index = names.index(self.current) + 1 if self.current in names else 0
        return index, len(names)

    def _end(self, phase: str, status: Status) -> str:
        step = self._step(phase)
        if step.status in (Status.RUNNING, Status.WAITING):
            step.status = status
        return phase

    def _step(self, name: str) -> StepState:
        return self.steps.setdefault(name, StepState(name=name))


def run_folders(folder: Path) -> list[tuple[str, Path]]:
    """(id, path) of every folder in `folder` that is or may become a run directory, and of every run directory inside a
    sweep's folder, with id SWEEP/LABEL; hidden folders and links are left out, as is the sweep's folder itself.

    One rule for `workbench runs` and the lab's runs list, so a sweep started from the command line into the lab's
    runs/ shows there as its runs.
    """
    found: list[tuple[str, Path]] = []
    for path in _subfolders(folder):
        if (path / SWEEP_FILE).is_file():
            found.extend((f"{path.name}/{run.name}", run) for run in _subfolders(path))
        else:
            found.append((path.name, path))
    return found


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    except OSError:
        return []


def fold(events: list[Event]) -> RunState:
    state = RunState()
    for event in events:
        state.apply(event)
    return state


UNFOLDED = frozenset({"message_sent"})
"""Event types `RunState.apply` ignores: a tail skips them unparsed (a flagship run writes one per ledger message)."""


class EventTail:
    """A run's events folded as they are appended: each `update` parses only the lines written since the last one, so a
    runs list polled every second costs a `stat` per run that did not change, not a re-read of every event log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = RunState()
        self._offset = 0
        self._file: tuple[int, int] | None = None
        """(device, inode) of the file folded so far: a file replaced by another (a run directory reused) is folded anew."""

    def update(self) -> RunState:
        try:
            stat = self.path.stat()
        except OSError:
            return self.state
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._file or stat.st_size < self._offset:
            self.state, self._offset, self._file = RunState(), 0, identity
        if stat.st_size > self._offset:
            try:
                with self.path.open("rb") as handle:
                    handle.seek(self._offset)
                    written = handle.read(stat.st_size - self._offset)
            except OSError:
                return self.state
            complete = written[: written.rfind(b"\n") + 1]  # the runner may be half-way through its last line
            self._offset += len(complete)
            for event in parse_lines(complete, skip=UNFOLDED):
                self.state.apply(event)
        return self.state


def read_run(folder: Path, tail: EventTail | None = None) -> RunState:
    """A run directory's state: its events (through `tail`, when a caller keeps one for this folder), checked against
    status.json and whether the process that wrote it lives. The state returned is the caller's to change."""
    state = EventTail(folder / EVENTS_FILE).update() if tail is None else tail.update().model_copy(deep=True)
    status = _read_status(folder / STATUS_FILE)
    if status is None:
        if state.status not in ENDED and (folder / EVENTS_FILE).exists():
            state.interrupted("no status.json: the run's process did not say it was still running")
        return state
    written = Status(str(status.get("status", Status.INTERRUPTED)))  # a Status value: _read_status checked it
    if written in ENDED and state.status not in ENDED:  # the status outlived an events file the disk could not finish
        if written is Status.INTERRUPTED:
            state.interrupted("the run was interrupted")
        state.status = written
    elif written is Status.RUNNING and not _alive(status.get("pid")):
        state.interrupted(f"its process ({status.get('pid')}) is gone without a last word (killed, or the kernel restarted)")
    return state


def _read_status(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") in {s.value for s in Status} else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process has that pid now; it is alive, but it may not be ours
        return True
    return True
