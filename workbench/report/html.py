"""report.html: one self-contained file (figures embedded) a person can read or mail.

The report is built only from what the coordinator legitimately holds: the
published metrics, the manifest and the ledger. It never reads a party store.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.ledger import Ledger
from workbench.recipe import Recipe
from workbench.report.blocks import Block, Figure, Table, Text
from workbench.report.comparison import comparison_blocks
from workbench.steps import REGISTRY

if TYPE_CHECKING:
    from jinja2 import Environment


@cache
def _env() -> Environment:
    """The template environment, made with the first report: the CLI imports this module, and `workbench validate` needs no jinja2."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("workbench.report"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["data_uri"] = lambda png: "data:image/png;base64," + base64.b64encode(png).decode()
    env.filters["cell"] = lambda value: "" if value is None else (number_cell(value) if isinstance(value, float) else value)
    env.filters["bytes"] = lambda n: human_bytes(n)
    env.tests["table"] = lambda block: isinstance(block, Table)
    env.tests["figure"] = lambda block: isinstance(block, Figure)
    env.tests["text"] = lambda block: isinstance(block, Text)
    return env


def number_cell(value: float) -> str:
    """Scores keep four decimals; ratios, seconds and sizes two; tiny differences their exponent."""
    if value == 0 or 1e-3 <= abs(value) < 1:
        return f"{value:.4f}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.1e}"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


def step_blocks(recipe: Recipe, metrics: dict[str, Any]) -> dict[str, list[Block]]:
    """Each step's report blocks, from its own `summarize`; a step the simulation scored also gets its scores, kept apart in metrics."""
    from workbench.report.linkage_truth import SIMULATION_TRUTH  # its module loads polars, which the CLI's import need not

    truth = metrics.get(SIMULATION_TRUTH, {})
    return {
        name: REGISTRY[spec.kind].summarize(metrics["steps"].get(name, {}), **({"truth": truth[name]} if name in truth else {}))
        for name, spec in zip(recipe.step_names(), recipe.steps)
    }


def boundary_statement(ledger: Ledger) -> str:
    """The sentence a privacy officer reads first: did row-level data leave any party?"""
    row_level = [m for m in ledger.messages if m.row_level]
    if not row_level:
        return "No row-level data left any party: every message was an aggregate, a summary or protected material."
    flows = sorted({f"{m.sender} → {m.receiver} ({m.kind}, protection: {m.protection.value})" for m in row_level})
    return f"{len(row_level)} message(s) carried row-level data, as the recipe declares: " + "; ".join(flows) + "."


def admission_statement(manifest: dict[str, Any]) -> str:
    """The report's first line: what let this run open the parties' data (signed approvals, a declaration, or mock rows)."""
    from workbench.governance.oversight import MODE_WORDS

    governance = manifest.get("governance", {})
    words = MODE_WORDS.get(governance.get("mode", ""), "how this run was admitted is not recorded")
    approvals = governance.get("approvals", {})
    signed = "; ".join(f"{party} (key {entry['key']}, {entry['signed_at']})" for party, entry in approvals.items())
    return f"Data access: {words}" + (f": {signed}." if signed else ".")


def write_report(path: Path, recipe: Recipe, metrics: dict[str, Any], manifest: dict[str, Any], ledger: Ledger) -> None:
    template = _env().get_template("report.html.j2")
    html = template.render(
        recipe=recipe,
        steps=list(zip(recipe.step_names(), recipe.steps)),
        blocks=step_blocks(recipe, metrics),
        comparison=comparison_blocks(recipe, metrics, manifest, ledger),
        manifest=manifest,
        ledger=ledger.summary(),
        ledger_total=ledger.total_bytes(),
        boundary=boundary_statement(ledger),
        admission=admission_statement(manifest),
        parties=recipe.parties,
        at={name: recipe.step_parties(spec) for name, spec in zip(recipe.step_names(), recipe.steps)},
    )
    path.write_text(html, encoding="utf-8")


def write_blocks_page(path: Path, title: str, intro: list[str], blocks: list[Block]) -> None:
    """A self-contained page of report blocks with the report's look, for what spans several runs (a sweep's comparison)."""
    path.write_text(_env().get_template("sweep.html.j2").render(title=title, intro=intro, blocks=blocks), encoding="utf-8")
