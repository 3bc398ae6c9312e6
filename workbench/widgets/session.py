"""What a workbench notebook's cells call: the recipe built cell by cell, then run with live widgets.

`workbench.notebook` writes notebooks whose header cell makes a session from
the recipe's datasets and parties, whose step cells add one step each, and
whose run cell runs the whole recipe. Each cell shows at once whether what it
holds is valid, so a mistake is found in the cell that has it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import yaml
from IPython.display import display

from workbench import safe_yaml
from workbench.recipe import Problem, Recipe, RecipeError, parse_recipe
from workbench.runner import RunResult, default_run_dir, run_recipe
from workbench.widgets.html import CARD, MUTED, table
from workbench.widgets.ledger_view import LedgerView
from workbench.widgets.monitor import RunMonitor
from workbench.widgets.results import ResultsView


class StepCard:
    """What a step cell shows: the step's place in the chain, or the problems found in it."""

    def __init__(self, index: int, name: str, kind: str, parties: list[str], problems: list[Problem]) -> None:
        self.index, self.name, self.kind, self.parties, self.problems = index, name, kind, parties, problems

    def _repr_html_(self) -> str:
        if self.problems:
            items = "".join(f"<li><code>{escape(p.path)}</code>: {escape(p.message)}</li>" for p in self.problems)
            return (
                f"<div class='wb-step-card wb-invalid' style='{CARD}; border-color:#c62828'><b>step {self.index + 1} · "
                f"{escape(self.kind)}</b> has problems:<ul>{items}</ul></div>"
            )
        at = ", ".join(self.parties) or "—"
        return (
            f"<div class='wb-step-card' style='{CARD}'><span style='color:#2e7d32'>✓</span> <b>step {self.index + 1} · "
            f"{escape(self.name)}</b> <span style='{MUTED}'>({escape(self.kind)}) at {escape(at)}</span></div>"
        )

    def __repr__(self) -> str:
        state = f"{len(self.problems)} problem(s)" if self.problems else "ok"
        return f"<step {self.index + 1} {self.name} ({self.kind}): {state}>"


class RecipeSession:
    """A recipe assembled from a header and steps keyed by name, so re-running a cell replaces its step."""

    def __init__(self, header: dict[str, Any], *, seed: int | None = None, base_dir: str | Path = ".") -> None:
        self.header = {key: value for key, value in header.items() if key != "steps"}
        if seed is not None:
            self.header["seed"] = seed
        self.base_dir = Path(base_dir)
        self.steps: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_yaml(cls, text: str, *, seed: int | None = None, base_dir: str | Path = ".") -> RecipeSession:
        header = safe_yaml.load(text, "the recipe header")
        if not isinstance(header, dict):
            raise ValueError(f"the recipe header must be a YAML mapping with name, datasets and parties; got {type(header).__name__}")
        return cls(header, seed=seed, base_dir=base_dir)

    @classmethod
    def from_recipe(cls, recipe: Recipe, *, base_dir: str | Path = ".") -> RecipeSession:
        session = cls(recipe.model_dump(mode="json"), base_dir=base_dir)
        for name, spec in zip(recipe.step_names(), recipe.steps):
            session.steps[name] = spec.model_dump(mode="json", exclude_unset=True)
        return session

    def step(self, key: str, text: str) -> StepCard:
        """Add (or replace) the step `key` from its YAML and check the recipe so far."""
        spec = safe_yaml.load(text, f"step {key!r}")
        if not isinstance(spec, dict):
            raise ValueError(f"step {key!r}: expected a YAML mapping with kind and params; got {type(spec).__name__}")
        self.steps[key] = spec
        index = list(self.steps).index(key)
        problems = [p for p in self.problems() if len(p.loc) > 1 and p.loc[:2] == ("steps", index)]
        parties: list[str] = []
        if not problems:
            recipe = self._parse_partial(index)
            parties = recipe.step_parties(recipe.steps[index]) if recipe else []
        return StepCard(index, key, str(spec.get("kind")), parties, problems)

    def raw(self) -> dict[str, Any]:
        return {**self.header, "steps": list(self.steps.values())}

    def yaml(self) -> str:
        return yaml.safe_dump(self.raw(), sort_keys=False, allow_unicode=True)

    def problems(self) -> list[Problem]:
        try:
            parse_recipe(self.yaml(), "notebook")
        except RecipeError as error:
            return error.problems
        return []

    def recipe(self) -> Recipe:
        """The whole recipe, validated; raises RecipeError naming each problem."""
        return parse_recipe(self.yaml(), "notebook")

    def run(self, out_dir: str | Path | None = None, *, show: bool = True, mock: bool = False, approvals_dir: Path | None = None) -> RunResult:
        """Run the recipe with a live monitor; the run directory is the same as `workbench run` writes (with `--mock`
        and `--approvals` as `mock` and `approvals_dir`)."""
        recipe = self.recipe()
        out = Path(out_dir) if out_dir else default_run_dir(recipe)
        monitor = RunMonitor(recipe.name)
        if show:
            display(monitor)
        return run_recipe(recipe, out, base_dir=self.base_dir, listeners=[monitor], mock=mock, approvals_dir=approvals_dir)

    def results(self, run: RunResult | str | Path) -> widgets.VBox:
        """Per-site scores, the ledger, and a link to the report, for a finished run or a run directory."""
        if isinstance(run, RunResult):
            results, ledger, out = ResultsView(run.metrics), LedgerView(run.ledger), run.out_dir
        else:
            results, ledger, out = ResultsView(run), LedgerView(run), Path(run)
        link = widgets.HTML(f"<a href='{escape((out / 'report.html').as_posix())}' target='_blank'>Open the report: {escape(str(out / 'report.html'))}</a>")
        return widgets.VBox([results, ledger, link])

    def _parse_partial(self, index: int) -> Recipe | None:
        steps = list(self.steps.values())[: index + 1]
        try:
            return parse_recipe(yaml.safe_dump({**self.header, "steps": steps}, sort_keys=False), "notebook")
        except RecipeError:
            return None

    def _repr_html_(self) -> str:
        rows = [
            [name, party.get("role"), (party.get("data") or {}).get("dataset", "—"), party.get("description", "")]
            for name, party in self.header.get("parties", {}).items()
        ]
        title = escape(str(self.header.get("name", "recipe")))
        return f"<div class='wb-session' style='{CARD}'><b>{title}</b> · seed {self.header.get('seed', 0)}{table(['party', 'role', 'dataset', ''], rows)}</div>"
