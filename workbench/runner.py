"""Runs a recipe step by step and writes the run directory.

The run directory is the unit of reproducibility: recipe.yaml (as run),
manifest.json (what it ran on), ledger.jsonl (what crossed boundaries),
metrics.json (what was learned; byte-identical for the same recipe and seed),
events.jsonl (how it went) and report.html (all of it, for people).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from workbench.context import StepContext
from workbench.data.sources import DataSourceError, LoadedDataset
from workbench.errors import WorkbenchError
from workbench.events import (
    Event,
    EventListener,
    MessageSent,
    Notice,
    Progress,
    RunFailed,
    RunFinished,
    RunInterrupted,
    RunStarted,
    StepFailed,
    StepFinished,
    StepStarted,
)
from workbench.governance.approvals import APPROVALS_DIR, Approval, ApprovalError, check_approval
from workbench.governance.audit_trail import TRAIL_DIR
from workbench.governance.oversight import MODE_WORDS, Mode, Oversight
from workbench.ledger import Ledger
from workbench.manifest import build_manifest, table_fingerprint
from workbench.parties import PartyStore, ScopedParties
from workbench.recipe import DataRef, Recipe
from workbench.report.html import write_report
from workbench.report.linkage_truth import SIMULATION_TRUTH, score_linkage
from workbench.run_state import DATA_PHASE, EVENTS_FILE, STATUS_FILE
from workbench.scratch import sweep_stale
from workbench.steps import REGISTRY

USER_ERRORS = (WorkbenchError,)
"""Errors that describe bad input, a recipe mistake or the environment: shown to the user as a message, not a traceback."""

ERROR_LOG = "error.log"
RELEASED_DIR = "released"
"""Where a run keeps what steps released to the coordinator (released/STEP/FILE), e.g. a DP synthetic table."""


class RunError(RuntimeError):
    """A run stopped; the message names the step (or data source) and the cause."""

    def __init__(self, message: str, *, user_error: bool) -> None:
        super().__init__(message)
        self.user_error = user_error


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    ledger: Ledger
    stores: dict[str, PartyStore]
    """Every party's store after the run: for notebooks and tests to inspect, never part of the report."""


class _EventLog:
    """Fans events out to listeners and appends them to events.jsonl."""

    def __init__(self, path: Path, listeners: Sequence[EventListener]) -> None:
        self._handle = path.open("w")
        self._listeners = list(listeners)

    def __call__(self, event: Event) -> None:
        self._handle.write(json.dumps(event.to_dict(), default=str) + "\n")
        self._handle.flush()
        for listener in self._listeners:
            listener(event)

    def last_word(self, event: Event) -> None:
        """The run's final event, on the way out of a failure: a full disk must not hide the failure it caused."""
        try:
            self(event)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._handle.close()
        except OSError:  # the disk filled up: the failure that caused it is being reported already
            pass


def default_run_dir(recipe: Recipe, parent: Path = Path("runs")) -> Path:
    """runs/NAME-HASH-TIME-RANDOM: one naming for the CLI, notebooks and the lab, so runs from every face sort together;
    the random suffix keeps two runs of one recipe started in the same second (a notebook and the sidebar) apart."""
    return parent / f"{recipe.name}-{recipe.hash()[:8]}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def run_recipe(
    recipe: Recipe,
    out_dir: Path,
    *,
    base_dir: Path = Path("."),
    listeners: Sequence[EventListener] = (),
    force: bool = False,
    mock: bool = False,
    approvals_dir: Path | None = None,
) -> RunResult:
    """Run every step in order; on failure raise RunError after recording what happened.

    status.json says at every moment what state the run directory is in (running, finished, failed or interrupted,
    and at which step), so a run that died is never taken for a finished one. Before any data is loaded, every party
    holding data must have approved the recipe's hash in `approvals_dir` (default: approvals/ beside the recipe),
    unless the recipe declares `approvals: not_required` or `mock` runs it on mock rows.
    """
    _prepare(out_dir, force)
    (out_dir / "recipe.yaml").write_text(recipe.to_yaml())
    emit = _EventLog(out_dir / EVENTS_FILE, listeners)
    started = time.perf_counter()
    phase = DATA_PHASE
    try:
        names = recipe.step_names()
        emit(RunStarted(recipe=recipe.name, recipe_hash=recipe.hash(), out_dir=str(out_dir), steps=names, started=datetime.now().isoformat(timespec="seconds")))
        swept = sweep_stale()
        if swept:
            emit(Notice(text=f"removed {len(swept)} private temporary folder(s) that killed runs left behind: {', '.join(map(str, swept))}"))
        ledger = Ledger(out_dir / "ledger.jsonl", listeners=[lambda message: emit(MessageSent(message=message))])
        oversight = _admit(recipe, out_dir, approvals_dir or base_dir / APPROVALS_DIR, mock)
        emit(Notice(text=f"data access: {MODE_WORDS[oversight.mode]}"))
        stores, truth, fingerprints = _load_parties(recipe, base_dir, emit, oversight, mock)
        roles = {name: party.role for name, party in recipe.parties.items()}
        results: dict[str, Any] = {}
        scores: dict[str, Any] = {}
        provenance: dict[str, Any] = {}
        timings: dict[str, float] = {}
        for index, (name, spec) in enumerate(zip(names, recipe.steps)):
            phase = name
            oversight.begin(name)
            _write_status(out_dir, "running", name)
            at = recipe.step_parties(spec)
            emit(StepStarted(step=name, kind=spec.kind, index=index, total=len(names), parties=at))
            ctx = StepContext(
                step=name,
                seed=recipe.seed,
                parties=ScopedParties(stores, at, name),
                roles=roles,
                ledger=ledger,
                emit=emit,
                oversight=oversight,
            )
            step_started = time.perf_counter()
            try:
                REGISTRY[spec.kind](spec.params).run(ctx)
            except Exception as error:
                emit(StepFailed(step=name, error=str(error)))
                user_error = isinstance(error, USER_ERRORS)
                raise RunError(f"step {name!r} ({spec.kind}) failed: {error}", user_error=user_error) from error
            timings[name] = time.perf_counter() - step_started
            results[name] = ctx.results
            if (score := score_linkage(spec.params, ctx, truth)) is not None:  # the simulation's, against generator truth no step sees
                scores[name] = score
            if ctx.manifest:
                provenance[name] = ctx.manifest
            _write_releases(out_dir / RELEASED_DIR / name, ctx.releases)
            emit(StepFinished(step=name, seconds=timings[name]))
        phase = "report"
        metrics = {"recipe": recipe.name, "recipe_hash": recipe.hash(), "seed": recipe.seed, "steps": results} | ({SIMULATION_TRUTH: scores} if scores else {})
        _write_json(out_dir / "metrics.json", metrics)
        manifest = build_manifest(recipe, fingerprints, timings, ledger) | {"steps": provenance, "governance": oversight.manifest()}
        _write_json(out_dir / "manifest.json", manifest)
        write_report(out_dir / "report.html", recipe, metrics, manifest, ledger)
        emit(RunFinished(out_dir=str(out_dir), seconds=time.perf_counter() - started))
        _write_status(out_dir, "finished", None)
        return RunResult(out_dir, metrics, manifest, ledger, stores)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into it by the CLI: the steps' own cleanup has run by now
        emit.last_word(RunInterrupted(phase=phase))
        _write_status(out_dir, "interrupted", phase)
        raise
    except RunError as error:
        emit.last_word(RunFailed(phase=phase, error=str(error), user_error=error.user_error))
        _record_failure(out_dir, phase, log_traceback=not error.user_error)
        raise
    except Exception as error:  # a bug outside any step (loading, fingerprinting, writing): the stack to error.log, no data
        emit.last_word(RunFailed(phase=phase, error=f"internal error ({type(error).__name__})", user_error=False))
        _record_failure(out_dir, phase, log_traceback=True)
        raise RunError(f"{phase}: internal error ({type(error).__name__}); this is a bug", user_error=False) from error
    finally:
        emit.close()


def _write_releases(folder: Path, releases: dict[str, bytes]) -> None:
    """What a step released to the coordinator, one file a release (names are the step's own, never a party's input)."""
    for file_name, data in releases.items():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_bytes(data)


def _write_status(out_dir: Path, status: str, step: str | None) -> None:
    _write_json(out_dir / STATUS_FILE, {"status": status, "step": step, "pid": os.getpid()})


def _record_failure(out_dir: Path, phase: str, *, log_traceback: bool) -> None:
    """Mark the run failed and keep the stack for developers; never let a full disk turn this into a traceback with data.

    Only the stack goes to error.log (file, line, code, exception message), no local variables. When even that cannot
    be written, the stack goes to standard error instead.
    """
    stack = traceback.format_exc()
    try:
        _write_status(out_dir, "failed", phase)
        if log_traceback:
            (out_dir / ERROR_LOG).write_text(stack)
    except OSError as error:
        sys.stderr.write(f"could not write to {out_dir} ({error.strerror}); the stack of the failure follows\n{stack}")


RUN_FILES = ("recipe.yaml", "manifest.json", "ledger.jsonl", "metrics.json", "events.jsonl", "report.html", STATUS_FILE, ERROR_LOG, TRAIL_DIR)
"""What a run writes; --force removes these of an earlier run first, so no old result survives beside a new recipe."""


def _prepare(out_dir: Path, force: bool) -> None:
    """A run directory to write into, or a RunError that says why it cannot be one."""
    blocker = next((parent for parent in (out_dir, *out_dir.parents) if parent.exists() and not parent.is_dir()), None)
    if blocker is not None:
        raise RunError(f"run directory {out_dir}: {blocker} is a file, not a folder; choose another --out", user_error=True)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise RunError(f"run directory {out_dir} already exists and is not empty; choose another --out or pass --force", user_error=True)
        if not (out_dir / "recipe.yaml").is_file():
            raise RunError(
                f"run directory {out_dir} holds files but no recipe.yaml: it is not a run directory, and --force will not empty it; choose another --out",
                user_error=True,
            )
        for name in RUN_FILES:
            if (out_dir / name).is_dir():
                shutil.rmtree(out_dir / name)
            else:
                (out_dir / name).unlink(missing_ok=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".writable"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise RunError(f"run directory {out_dir} cannot be written ({error.strerror}); choose another --out", user_error=True) from None


def _admit(recipe: Recipe, out_dir: Path, approvals_dir: Path, mock: bool) -> Oversight:
    """The parties' trails, opened with how each let the run in; a RunError naming every party whose approval is missing
    or invalid, before any of their data is read."""
    parties = list(recipe.parties)
    if mock or recipe.approvals == "not_required":
        mode: Mode = "mock" if mock else "not_required"
        return Oversight.open(out_dir, parties, mode, recipe.hash(), {})
    approvals: dict[str, Approval] = {}
    refused: dict[str, str] = {}
    for name, party in recipe.parties.items():
        if party.data is None:  # holds no data: nothing of its to approve
            continue
        try:
            approvals[name] = check_approval(approvals_dir, name, recipe.name, recipe.hash())
        except ApprovalError as error:
            refused[name] = str(error)
    if refused:
        Oversight.refuse(out_dir, refused, recipe.hash())
        raise RunError("no data was read: " + "; ".join(refused.values()), user_error=True)
    return Oversight.open(out_dir, parties, "approved", recipe.hash(), approvals)


def _load_parties(
    recipe: Recipe, base_dir: Path, emit: EventListener, oversight: Oversight, mock: bool
) -> tuple[dict[str, PartyStore], dict[str, Any], dict[str, dict[str, Any]]]:
    """Load each dataset once (or its mock) and hand each party its part; keep generator truth apart from every store."""
    stores = {name: PartyStore(name, party.role, on_read=oversight.read) for name, party in recipe.parties.items()}
    used = {party.data.dataset for party in recipe.parties.values() if party.data}
    loaded, truth = {}, {}
    for done, dataset in enumerate(sorted(used), start=1):
        source = recipe.datasets[dataset]
        try:
            loaded[dataset] = source.load_mock(recipe.seed, base_dir) if mock else source.load(recipe.seed, base_dir)
        except DataSourceError as error:
            raise RunError(f"dataset {dataset!r}: {error}", user_error=True) from error
        if loaded[dataset].truth is not None:
            truth[dataset] = loaded[dataset].truth
        emit(Progress(step=DATA_PHASE, done=done, total=len(used), label=dataset))
    fingerprints = {}
    for name, party in recipe.parties.items():
        if party.data is None:
            continue
        part, table = _part_of(name, party.data, loaded[party.data.dataset])
        stores[name].put_table(party.data.table, table)
        fingerprints[name] = table_fingerprint(party.data.dataset, part, table)
        oversight.loaded(name, party.data.dataset, part, party.data.table, table, fingerprints[name])
    return stores, truth, fingerprints


def party_table(recipe: Recipe, name: str, base_dir: Path, mock: bool = False) -> tuple[str, pl.DataFrame]:
    """One party's table (its name in the party's store, and the rows), or its mock: for an owner's own review."""
    data = recipe.parties[name].data
    if data is None:
        raise RunError(f"party {name!r} holds no data in recipe {recipe.name!r}", user_error=True)
    source = recipe.datasets[data.dataset]
    try:
        loaded = source.load_mock(recipe.seed, base_dir) if mock else source.load(recipe.seed, base_dir)
    except DataSourceError as error:
        raise RunError(f"dataset {data.dataset!r}: {error}", user_error=True) from error
    return data.table, _part_of(name, data, loaded)[1]


def _part_of(name: str, data: DataRef, loaded: LoadedDataset) -> tuple[str, pl.DataFrame]:
    part = data.part or next(iter(loaded.parts))
    if part not in loaded.parts:  # a file or package changed under the recipe since it was validated
        raise RunError(f"party {name!r}: dataset {data.dataset!r} has no part {part!r}", user_error=True)
    return part, loaded.parts[part]


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n")
