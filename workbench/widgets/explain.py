"""A recipe's chain and each step's report blocks as notebook output, for tutorials and teaching.

Everything comes from the recipe and the step registry (each step's docstring
and its own `summarize`), so a tutorial that shows these grows with its
recipe: a step added to the recipe file appears here with its own results.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import ipywidgets as widgets

from workbench.recipe import Recipe
from workbench.report.blocks import Block, Figure, Table, Text
from workbench.report.html import step_blocks
from workbench.steps import REGISTRY
from workbench.widgets.html import CARD, MUTED, heading, png_img, table


def chain_html(recipe: Recipe) -> str:
    """The chain of steps: order, kind, where each runs and what it does."""
    rows = []
    for index, (name, spec) in enumerate(zip(recipe.step_names(), recipe.steps), start=1):
        doc = " ".join((REGISTRY[spec.kind].__doc__ or "").split())
        rows.append([index, name, spec.kind, ", ".join(recipe.step_parties(spec)), doc])
    return heading(recipe.name, f"{len(recipe.steps)} steps") + table(["#", "step", "kind", "runs at", "what it does"], rows, css_class="wb-chain-table")


def blocks_html(blocks: list[Block]) -> str:
    """Report blocks (tables, figures, text) as HTML, the same content report.html shows."""
    parts = []
    for block in blocks:
        if isinstance(block, Table):
            parts.append(heading(block.title) + table(block.columns, block.rows) + (f"<div style='{MUTED}'>{escape(block.note)}</div>" if block.note else ""))
        elif isinstance(block, Figure):
            parts.append(heading(block.title) + png_img(block.png) + (f"<div style='{MUTED}'>{escape(block.caption)}</div>" if block.caption else ""))
        elif isinstance(block, Text):
            parts.append(heading(block.title) + "".join(f"<p>{escape(p)}</p>" for p in block.paragraphs))
    return "".join(parts)


class StepReports(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types, so its VBox is Any to a checker
    """Each step's own report blocks, in chain order, from a finished run's metrics."""

    def __init__(self, recipe: Recipe, metrics: Mapping[str, Any]) -> None:
        sections = []
        for name, blocks in step_blocks(recipe, dict(metrics)).items():
            body = blocks_html(blocks) or f"<div style='{MUTED}'>This step published nothing to the coordinator.</div>"
            sections.append(widgets.HTML(f"<div style='{CARD}'><div style='font-weight:600'>{escape(name)}</div>{body}</div>"))
        super().__init__(sections)
        self.add_class("wb-step-reports")
