"""The results view: per-site AUC of each model (local, federated, pooled, ...) from a run's metrics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from workbench.report.scores import SiteScores, site_scores
from workbench.widgets import svg
from workbench.widgets.html import heading, note, table


class ResultsView(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types, so its VBox is Any to a checker
    """One chart and one table per scoring step; each site's best model in bold."""

    def __init__(self, metrics: Mapping[str, Any] | Path | str) -> None:
        if isinstance(metrics, str | Path):
            path = Path(metrics)
            loaded: Mapping[str, Any] = json.loads((path / "metrics.json" if path.is_dir() else path).read_text())
            metrics = loaded
        self.scores = site_scores(metrics)
        parts = [_render(scored) for scored in self.scores] or [note("No step of this run scored models per site.")]
        self.html = widgets.HTML("".join(parts))
        super().__init__([self.html])
        self.add_class("wb-results")


def _render(scored: SiteScores) -> str:
    auc = scored.metric("auc")
    models = scored.models
    rows: list[list[object]] = []
    bold = set()
    for r, site in enumerate(scored.sites):
        values = [auc[model][r] for model in models]
        rows.append([site, *values])
        present = [v for v in values if v is not None]
        if len(present) > 1:
            bold.add((r, 1 + values.index(max(present))))
    rows.append(["mean", *(scored.mean(model) for model in models)])
    chart = svg.grouped_bars("AUC per site", scored.sites, auc, ylabel="AUC", ylim=(0.5, 1.0))
    return (
        heading(f"Results of {scored.step}", "held-out AUC per site and model")
        + "<div style='display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start'>"
        + f"<div>{table(['site', *models], rows, bold=bold, css_class='wb-results-table')}</div><div>{chart}</div></div>"
    )
