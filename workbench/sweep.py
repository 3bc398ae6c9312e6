"""A sweep: one recipe run at several values of one parameter, one run directory a value, and one comparison.

The question "what does epsilon (or l2, or the number of rounds) cost in utility, and what does it buy against an
attacker?" needs the same pipeline at each value and nothing else changed. The variants are derived from the one
recipe by an override at one path, so they cannot drift apart, and each is a normal run directory (`workbench runs`
and the lab list them). The sweep's folder holds them beside sweep.json (what ran, at which value, how it ended, the
comparison's figures) and sweep.html (the comparison). A variant that fails is recorded and the others still run.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from workbench import safe_yaml
from workbench.errors import WorkbenchError
from workbench.events import EventListener
from workbench.recipe import Override, Recipe, RecipeError, parse_recipe, resolve_step_names
from workbench.recipe_problems import did_you_mean, format_path, parse_path
from workbench.run_state import EVENTS_FILE, SWEEP_FILE
from workbench.runner import RunError, RunResult, run_recipe

if TYPE_CHECKING:
    from workbench.report.sweep_comparison import VariantMetrics

SWEEP_PAGE = "sweep.html"
MAX_VALUES = 20
"""Variants a sweep may have: each is a whole run; more is a grid search, which wants another tool."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


class SweepError(WorkbenchError, ValueError):
    """A sweep that cannot be run as given: its path, its values or its folder."""


@dataclass(frozen=True)
class Sweep:
    """One path in the recipe (`steps[fl_dp].params.epsilon`, by step name or index) and the values to run it at."""

    path: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        where = f"sweep of {self.path!r}"
        try:
            parse_path(self.path)
        except ValueError as error:
            raise SweepError(f"{where}: {error}") from None
        if not self.values:
            raise SweepError(f"{where}: values: give at least one value, e.g. {self.path}=0.1,1")
        if len(self.values) > MAX_VALUES:
            raise SweepError(f"{where}: values: {len(self.values)} values; a sweep runs at most {MAX_VALUES} (each is a whole run)")
        for value in self.values:
            if isinstance(value, float) and not math.isfinite(value):
                raise SweepError(f"{where}: values: {value} is no value a recipe accepts; for 'no limit' or 'off' write null where the field allows it")
            if not isinstance(value, str | int | float | bool | type(None)):
                raise SweepError(f"{where}: values: {value!r} is a {type(value).__name__}; sweep over single values (numbers, strings, true/false, null)")
        texts = [value_text(value) for value in self.values]
        repeated = sorted({text for text in texts if texts.count(text) > 1})
        if repeated:
            raise SweepError(f"{where}: values: {', '.join(repeated)} given more than once")

    @classmethod
    def parse(cls, text: str) -> Sweep:
        """`PATH=v1,v2,...` as on the command line, each value read as YAML (`0.5`, `null`, `true`, `fedavg`)."""
        path, sep, values = text.partition("=")
        if not sep or not path.strip():
            raise SweepError(f"--sweep {text!r}: expected PATH=v1,v2,..., e.g. steps[local_train].params.model.l2=0.01,1")
        parsed = []
        for item in values.split(","):
            if not item.strip():
                raise SweepError(f"--sweep {text!r}: an empty value between commas; write null for 'none'")
            try:
                parsed.append(safe_yaml.load(item, "the value"))
            except safe_yaml.YamlError as error:
                raise SweepError(f"--sweep {text!r}: value {item!r}: {error}") from None
        return cls(path.strip(), tuple(parsed))

    @property
    def field(self) -> str:
        """The swept field's own name, for labels and axes: `epsilon` of `steps[fl_dp].params.epsilon`."""
        return next((part for part in reversed(parse_path(self.path)) if isinstance(part, str)), self.path)

    def labels(self) -> list[str]:
        """A folder name per value, `epsilon=0.5`, `epsilon=null`: safe on every filesystem, unique within the sweep."""
        labels: list[str] = []
        for value in self.values:
            label = _UNSAFE.sub("_", f"{self.field}={value_text(value)}")[:80]
            labels.append(label if label not in labels else f"{label}-{len(labels) + 1}")
        return labels


def value_text(value: Any) -> str:
    """A value as YAML writes it: `null`, `true`, `0.5`, `fedavg`."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


@dataclass
class Variant:
    """One value of the sweep and how its run went."""

    label: str
    value: Any
    status: str = "pending"
    """pending, running, finished, failed or interrupted."""
    error: str | None = None
    user_error: bool = True
    """False when the run failed of a bug (its stack is in the run's error.log)."""
    run_dir: str | None = None
    """The run directory's name in the sweep's folder (the label), once the run has started writing it."""
    recipe: Recipe | None = None
    result: RunResult | None = None

    def record(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "run_dir": self.run_dir,
            "status": self.status,
            "error": self.error,
            **({"recipe_hash": self.recipe.hash()} if self.recipe is not None else {}),
        }


@dataclass(frozen=True)
class SweepResult:
    out_dir: Path
    sweep: Sweep
    path: str
    """The path with step names resolved to indices, `steps[3].params.epsilon`."""
    variants: list[Variant]
    rows: list[dict[str, Any]]
    """The comparison, one row per finished variant, site and model (as in sweep.json)."""

    @property
    def failed(self) -> list[Variant]:
        return [v for v in self.variants if v.status != "finished"]

    @property
    def page(self) -> Path:
        return self.out_dir / SWEEP_PAGE


def default_sweep_dir(recipe: Recipe, parent: Path = Path("runs")) -> Path:
    """runs/NAME-sweep-TIME, beside the runs `default_run_dir` names."""
    return parent / f"{recipe.name}-sweep-{datetime.now():%Y%m%d-%H%M%S}"


def run_sweep(
    recipe: Path | str,
    sweep: Sweep,
    out_dir: Path | None = None,
    *,
    base_dir: Path | None = None,
    overrides: Sequence[Override] = (),
    listeners: Callable[[str], Sequence[EventListener]] = lambda label: (),
    on_variant: Callable[[Variant], None] = lambda variant: None,
    force: bool = False,
    mock: bool = False,
    approvals_dir: Path | None = None,
) -> SweepResult:
    """Run the recipe (a file, or YAML text with `base_dir` for its data) once per value into OUT/<label>/; write
    OUT/sweep.json as it goes and OUT/sweep.html at the end.

    The recipe itself (with `overrides`) must be valid and the path must name a field it has: a RecipeError or SweepError
    before anything runs. A variant whose value is refused, or whose run fails, is recorded as failed and the others
    run; `listeners(label)` watch each variant's run, `on_variant` hears of each variant as it ends. `mock` and
    `approvals_dir` go to every variant's run: each variant has a hash of its own, so each needs its own approvals.
    """
    if isinstance(recipe, Path):
        text, source, base_dir = _read(recipe), str(recipe), recipe.parent if base_dir is None else base_dir
    else:
        text, source, base_dir = recipe, "<recipe>", base_dir or Path(".")
    base = parse_recipe(text, source, overrides, base_dir)
    loc = resolve_path(base, sweep.path)
    out_dir = out_dir or default_sweep_dir(base)
    _prepare(out_dir, force)
    variants = [Variant(label, value) for label, value in zip(sweep.labels(), sweep.values)]
    record = {"recipe": base.name, "path": sweep.path, "resolved_path": format_path(loc), "values": list(sweep.values), "labels": sweep.labels()}

    def save() -> None:
        _write_record(out_dir, record | {"status": "running", "variants": [v.record() for v in variants]})

    save()
    try:
        for variant in variants:
            run_options = {"force": force, "mock": mock, "approvals_dir": approvals_dir}
            _run_variant(variant, text, source, [*overrides, (format_path(loc), variant.value)], base_dir, out_dir, listeners, run_options, save)
            save()
            on_variant(variant)
    except KeyboardInterrupt:
        for variant in variants:
            if variant.status in ("pending", "running"):
                variant.status, variant.error = "interrupted", variant.error or "the sweep was interrupted"
        _write_record(out_dir, record | {"status": "interrupted", "variants": [v.record() for v in variants]})
        raise
    return _finish(out_dir, sweep, format_path(loc), record, variants)


def resolve_path(recipe: Recipe, path: str) -> tuple[str | int, ...]:
    """The path with step names as indices, checked against the recipe: every part must be a field (or entry, or item)
    the recipe has, so a misspelt path is one error before anything runs, not one failed run per value."""
    where = f"sweep of {path!r}"
    try:
        loc = resolve_step_names(recipe.model_dump(mode="json"), parse_path(path))
    except ValueError as error:
        raise SweepError(f"{where}: {error}") from None
    node: Any = recipe
    for depth, part in enumerate(loc):
        here = format_path(loc[:depth]) or "the recipe"
        if isinstance(node, BaseModel):
            fields = list(type(node).model_fields)
            if part not in fields:
                raise SweepError(f"{where}: {here} has no field {part!r}{did_you_mean(str(part), fields)}; its fields: {', '.join(fields)}")
            node = getattr(node, str(part))
        elif isinstance(node, dict):
            if part not in node:
                names = [str(key) for key in node]
                raise SweepError(f"{where}: {here} has no {part!r}{did_you_mean(str(part), names)}; it has: {', '.join(names) or 'nothing'}")
            node = node[part]
        elif isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                raise SweepError(f"{where}: {here} has no item {part!r}; it has {len(node)}, [0] to [{len(node) - 1}]")
            node = node[part]
        elif node is None:  # an optional section the recipe leaves out: each variant's validation checks what is set in it
            break
        else:
            raise SweepError(f"{where}: {here} is a value ({node!r}), not a section with fields")
    return loc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SweepError(f"cannot read the recipe file {path}: {error}") from None


def _prepare(out_dir: Path, force: bool) -> None:
    """A folder for the sweep: new or empty, or with --force one an earlier sweep wrote (its variants are overwritten)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SweepError(f"sweep folder {out_dir} is a file; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise SweepError(f"sweep folder {out_dir} already exists and is not empty; choose another --out or pass --force")
        if not (out_dir / SWEEP_FILE).is_file():
            raise SweepError(
                f"folder {out_dir} holds files but no {SWEEP_FILE}: it is no sweep's folder, and --force will not write into it; choose another --out"
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SweepError(f"sweep folder {out_dir} cannot be created ({error.strerror}); choose another --out") from None


def _run_variant(
    variant: Variant,
    text: str,
    source: str,
    overrides: list[Override],
    base_dir: Path,
    out_dir: Path,
    listeners: Callable[[str], Sequence[EventListener]],
    run_options: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """Validate and run one variant, recording how it ended on it; only an interrupt goes further."""
    variant.status = "running"
    try:
        variant.recipe = parse_recipe(text, source, overrides, base_dir)
    except RecipeError as error:
        variant.status, variant.error = "failed", "; ".join(f"{p.path or '(recipe)'}: {p.message}" for p in error.problems)
        return
    variant.run_dir = variant.label
    save()  # sweep.json says which variant runs, and where, while it runs
    try:
        variant.result = run_recipe(variant.recipe, out_dir / variant.label, base_dir=base_dir, listeners=listeners(variant.label), **run_options)
    except RunError as error:
        variant.status, variant.error, variant.user_error = "failed", str(error), error.user_error
        if not (out_dir / variant.label / EVENTS_FILE).is_file():  # refused before it began (e.g. its folder is taken)
            variant.run_dir = None
        return
    except KeyboardInterrupt:
        variant.status, variant.error = "interrupted", "interrupted while running"
        raise
    variant.status = "finished"


def _measured(variant: Variant, metrics: dict[str, Any] | None) -> VariantMetrics:
    """What the comparison reads of a variant: its metrics, and the model each of its training steps saved."""
    from workbench.report.sweep_comparison import VariantMetrics

    models = {} if variant.recipe is None else {name: c.saves_models[0] for name, c in variant.recipe.contracts() if c.saves_models}
    return VariantMetrics(variant.label, variant.value, value_text(variant.value), metrics, models, variant.status, variant.error, variant.run_dir)


def load_sweep(out_dir: Path) -> tuple[str, list[VariantMetrics]]:
    """A sweep's path and its variants as the comparison reads them, from its folder (sweep.json and each variant's run
    directory): what a notebook shows of a sweep that ran elsewhere, or is still running."""
    from workbench.recipe import load_recipe

    try:
        record = json.loads((out_dir / SWEEP_FILE).read_text())
    except (OSError, ValueError) as error:
        raise SweepError(f"{out_dir}: no readable {SWEEP_FILE} ({error}); pass the folder `workbench run --sweep` wrote") from None
    variants = []
    for entry in record["variants"]:
        variant = Variant(entry["label"], entry["value"], entry["status"], entry.get("error"), run_dir=entry.get("run_dir"))
        run, metrics = out_dir / variant.label, None
        if variant.status == "finished":
            variant.recipe = load_recipe(run / "recipe.yaml")
            metrics = json.loads((run / "metrics.json").read_text())
        variants.append(_measured(variant, metrics))
    return str(record["path"]), variants


def _finish(out_dir: Path, sweep: Sweep, path: str, record: dict[str, Any], variants: list[Variant]) -> SweepResult:
    from workbench.report.html import write_blocks_page
    from workbench.report.sweep_comparison import comparison_rows, sweep_blocks

    measured = [_measured(v, None if v.result is None else v.result.metrics) for v in variants]
    rows = comparison_rows(measured)
    failed = any(v.status != "finished" for v in variants)
    _write_record(out_dir, record | {"status": "failed" if failed else "finished", "variants": [v.record() for v in variants], "comparison": rows})
    done = sum(v.status == "finished" for v in variants)
    resolved = f" ({path})" if path != sweep.path else ""
    ended = f"{done} finished" + (f", {len(variants) - done} did not" if done < len(variants) else "")
    intro = [
        f"The recipe {record['recipe']} run at {len(variants)} values of {sweep.path}{resolved}, nothing else changed; {ended}.",
        "Each variant's run directory, with its own report.html, is the folder of its label beside this page.",
    ]
    write_blocks_page(out_dir / SWEEP_PAGE, f"{record['recipe']}: sweep of {sweep.field}", intro, sweep_blocks(sweep.path, measured, rows))
    return SweepResult(out_dir, sweep, path, variants, rows)


def _write_record(out_dir: Path, record: dict[str, Any]) -> None:
    """sweep.json, replaced whole (the lab reads it while the sweep runs)."""
    partial = out_dir / f".{SWEEP_FILE}.tmp"
    partial.write_text(json.dumps(record, indent=2, allow_nan=False, default=str) + "\n")
    os.replace(partial, out_dir / SWEEP_FILE)
