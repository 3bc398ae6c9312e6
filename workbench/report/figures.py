"""Figures as PNG bytes, drawn with matplotlib's non-interactive backend so they work headless."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # matplotlib and numpy load with the first figure: `workbench validate` draws none
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from workbench.report.scores import SiteScores


def _use_agg() -> None:
    """Choose the non-interactive backend before pyplot loads (a no-op once chosen)."""
    import matplotlib

    matplotlib.use("Agg")


def auc_intervals(scored: SiteScores) -> bytes:
    """Held-out AUC of every model at every site as a point with its interval, the sites labelled with their n and
    positives: the axis spans every value and every interval (a model worse than chance is shown, not cut off), a
    dashed line marks chance, and the legend sits beside the plot so no point hides behind it."""
    _use_agg()
    import matplotlib.pyplot as plt
    import numpy as np

    sites, models = scored.sites, scored.models
    fig, ax = plt.subplots(figsize=(2.6 + 1.7 * len(sites), 3.4), dpi=110)
    width = 0.8 / max(len(models), 1)
    for offset, model in enumerate(models):
        points = [(position, *interval) for position, site in enumerate(sites) if (interval := auc_interval_of(scored, site, model))]
        if points:
            x = np.array([p[0] for p in points]) + offset * width - 0.4 + width / 2
            auc, low, high = (np.array([p[i] for p in points]) for i in (1, 2, 3))
            ax.errorbar(x, auc, yerr=[auc - low, high - auc], fmt="o", markersize=4, capsize=2, linewidth=1, color=f"C{offset % 10}", label=model)
    ax.axhline(0.5, color="#999", linestyle="--", linewidth=0.8)
    ax.set_ylim(*auc_axis(scored))
    labels = []
    for site in sites:
        first = next(iter(scored.scores[site].values()), {})
        labels.append(f"{site}\nn={first.get('n', '?')}, {first.get('positives', '?')} positive")
    ax.set_xticks(np.arange(len(sites)), labels, fontsize=8)
    ax.set_ylabel("held-out AUC and its interval")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return to_png(fig)


def auc_interval_of(scored: SiteScores, site: str, model: str) -> tuple[float, float, float] | None:
    """(AUC, low, high) of one model at one site; the interval collapses to the point when the step gave none."""
    figures = scored.scores[site].get(model, {})
    auc = figures.get("auc")
    if auc is None:
        return None
    low, high = figures.get("auc_ci") or (auc, auc)
    return float(auc), float(low), float(high)


def auc_axis(scored: SiteScores) -> tuple[float, float]:
    """From a little below the lowest interval (chance at least) to a little above the highest, within [0, 1]."""
    found = [interval for site in scored.sites for model in scored.models if (interval := auc_interval_of(scored, site, model))]
    low = min([0.5, *(interval[1] for interval in found)])
    high = max([1.0, *(interval[2] for interval in found)])
    return max(0.0, low - 0.05), min(1.0, high) + 0.02


def _finished(fig: Figure, ax: Axes, *, legend: int = 8, loc: Literal["best", "lower right"] = "best") -> bytes:
    """Every figure's last strokes, alike: a frameless legend, no top or right spine, a tight layout, PNG bytes."""
    ax.legend(fontsize=legend, frameon=False, loc=loc)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return to_png(fig)


def to_png(fig: Figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def line_chart(x: Sequence[int], series: Mapping[str, Sequence[float | None]], *, ylabel: str, xlabel: str = "round") -> bytes:
    """One line per series (e.g. site) over rounds; None leaves a gap."""
    _use_agg()
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=110)
    for name, values in series.items():
        ax.plot(x, [np.nan if value is None else value for value in values], marker="o", markersize=2.5, linewidth=1.4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finished(fig, ax)


def roc_chart(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, floor: float = 1e-3) -> bytes:
    """ROC curves on log-log axes, where the low false-positive rates that matter for membership inference are visible
    (Carlini et al. 2022); the diagonal is what guessing achieves."""
    _use_agg()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.6), dpi=110)
    for name, (fpr, tpr) in curves.items():
        points = [(f, t) for f, t in zip(fpr, tpr) if f >= floor and t > 0]
        if points:
            ax.plot(*zip(*points), label=name, linewidth=1.2)
    ax.plot([floor, 1], [floor, 1], color="#999", linestyle="--", linewidth=0.8, label="guessing")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    return _finished(fig, ax, legend=7, loc="lower right")


def xy_chart(
    series: Mapping[str, Sequence[tuple[float | None, float | None]]],
    *,
    xlabel: str,
    ylabel: str,
    xticks: Sequence[tuple[float, str]] | None = None,
    point_labels: Sequence[str] | None = None,
    log_x: bool = False,
) -> bytes:
    """One line of points per series (e.g. a site's model across a sweep's variants), in the order given; a point with
    None on either axis is left out. `xticks` names positions on the x axis (swept values that are no numbers, e.g.
    null); `point_labels` writes the i-th label beside every series' i-th point (which variant a point is)."""
    _use_agg()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for name, points in series.items():
        shown = [(i, x, y) for i, (x, y) in enumerate(points) if x is not None and y is not None]
        if not shown:
            continue
        ax.plot([x for _, x, _ in shown], [y for _, _, y in shown], marker="o", markersize=3.5, linewidth=1.2, label=name)
        for i, x, y in shown:
            if point_labels:
                ax.annotate(point_labels[i], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6, color="#5b6578")
    if log_x:
        ax.set_xscale("log")
    if xticks is not None:
        ax.set_xticks([position for position, _ in xticks], [label for _, label in xticks], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finished(fig, ax, legend=7)
