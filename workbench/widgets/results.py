"""The results view: per-site AUC of each model (local, federated, pooled, ...) from a run's metrics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from workbench.report.evaluation import GAIN, verdict, with_interval
from workbench.report.figures import auc_intervals
from workbench.report.scores import POOLED_TEST, SiteScores, site_scores
from workbench.widgets.html import heading, note, png_img, table


class ResultsView(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types, so its VBox is Any to a checker
    """One chart and one table per scoring step: AUC with its interval, and in bold only the gains the site's rows show."""

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
    models = scored.models
    rows: list[list[object]] = []
    bold = set()
    for r, site in enumerate(scored.sites):
        scores = scored.scores[site]
        first = next(iter(scores.values()))
        cells = [with_interval(scores[m].get("auc"), scores[m].get("auc_ci")) if m in scores else None for m in models]
        rows.append([site, first.get("n"), first.get("positives"), *cells])
        bold |= {(r, 3 + c) for c, m in enumerate(models) if verdict(scores.get(m, {}).get("versus")) == GAIN}
    pooled = scored.pooled
    if pooled:
        first = next(iter(pooled.values()))
        rows.append(
            [POOLED_TEST, first["n"], first["positives"], *(with_interval(pooled[m]["auc"], pooled[m].get("auc_ci")) if m in pooled else None for m in models)]
        )
    rows.append(["mean over sites", None, None, *(scored.mean(model) for model in models)])
    chart = png_img(auc_intervals(scored), max_width=640)
    return (
        heading(f"Results of {scored.step}", "held-out AUC per site and model, with 95 % intervals")
        + "<div style='display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start'>"
        + f"<div>{table(['site', 'n', 'positives', *models], rows, bold=bold, css_class='wb-results-table')}"
        + note("Bold: a gain over the baseline that DeLong's paired interval shows (it excludes zero); elsewhere these rows cannot tell the models apart.")
        + f"</div><div>{chart}</div></div>"
    )
