"""What `workbench run` prints at the end: a line a step, the boundary sentence, the ledger; `--json` prints the same as data.

A CI log is 80 columns wide and read by people skimming for a figure: each step says what its results come to in
its own words (`Step.headline`), and the full tables stay in report.html.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from workbench.ledger import Ledger
from workbench.recipe import Recipe
from workbench.report.html import boundary_statement, human_bytes
from workbench.steps import REGISTRY


def run_summary(recipe: Recipe, metrics: dict[str, Any], manifest: dict[str, Any], ledger: Ledger, out_dir: str) -> dict[str, Any]:
    timings = manifest.get("timings_seconds", {})
    steps: list[dict[str, Any]] = [
        {
            "name": name,
            "kind": spec.kind,
            "seconds": round(float(timings.get(name, 0.0)), 2),
            "headline": REGISTRY[spec.kind].headline(metrics["steps"].get(name, {})),
        }
        for name, spec in zip(recipe.step_names(), recipe.steps)
    ]
    return {
        "recipe": recipe.name,
        "recipe_hash": recipe.hash(),
        "seconds": round(sum(step["seconds"] for step in steps), 2),
        "steps": steps,
        "ledger": {"messages": len(ledger.messages), "bytes": ledger.total_bytes(), "row_level_messages": sum(m.row_level for m in ledger.messages)},
        "boundary": boundary_statement(ledger),
        "out_dir": out_dir,
    }


def render_summary(console: Console, summary: dict[str, Any]) -> None:
    console.print(
        f"[bold]{summary['recipe']}[/] · hash {summary['recipe_hash'][:12]} · {len(summary['steps'])} steps in {summary['seconds']:.1f} s",
        highlight=False,
    )
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    table.add_column("step", no_wrap=True, style="bold")
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("headline", overflow="fold")
    for step in summary["steps"]:
        table.add_row(step["name"], f"{step['seconds']:.1f} s", step["headline"])
    console.print(table)
    ledger = summary["ledger"]
    row_level = f", {ledger['row_level_messages']} row-level" if ledger["row_level_messages"] else ""
    console.print(f"ledger: {ledger['messages']} messages, {human_bytes(ledger['bytes'])}{row_level}", highlight=False)
    console.print(summary["boundary"], highlight=False)
    console.print(f"run directory: [bold]{summary['out_dir']}[/] (full tables and figures in report.html)", highlight=False)


def scoring_headline(recipe: Recipe, summary: dict[str, Any]) -> str:
    """A run in one line, as a sweep prints each variant: the headlines of the steps that read models (they score what
    was trained, so they differ from value to value), else the last headline there is."""
    scoring = {name for name, contract in recipe.contracts() if contract.reads_models}
    parts = [step["headline"] for step in summary["steps"] if step["name"] in scoring and step["headline"]]
    return " · ".join(parts) or next((step["headline"] for step in reversed(summary["steps"]) if step["headline"]), "")
