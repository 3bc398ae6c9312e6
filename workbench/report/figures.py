"""Figures as PNG bytes, drawn with matplotlib's non-interactive backend so they work headless."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def grouped_bars(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
) -> bytes:
    """One group of bars per category (e.g. site), one bar per series (e.g. model); None leaves a gap."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(categories), 3.2), dpi=110)
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(categories))
    for offset, (name, values) in enumerate(series.items()):
        heights = [np.nan if value is None else value for value in values]
        bars = ax.bar(positions + offset * width - 0.4 + width / 2, heights, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_xticks(positions, categories, fontsize=8)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return to_png(fig)


def to_png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def line_chart(x: Sequence[int], series: Mapping[str, Sequence[float | None]], *, ylabel: str, xlabel: str = "round") -> bytes:
    """One line per series (e.g. site) over rounds; None leaves a gap."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=110)
    for name, values in series.items():
        ax.plot(x, [np.nan if value is None else value for value in values], marker="o", markersize=2.5, linewidth=1.4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return to_png(fig)
