from __future__ import annotations

import numpy as np
import pytest

from workbench.models.metrics import average_precision, roc_auc
from workbench.models.pooled_scores import PooledLayout


def _sites(rng: np.random.Generator, sizes: tuple[int, ...], decimals: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    sites = []
    for n in sizes:
        y = (rng.random(n) < 0.1).astype(float)
        p = 1 / (1 + np.exp(-(rng.normal(-2.5, 1, n) + 1.5 * y)))
        sites.append((y, p if decimals is None else np.round(p, decimals)))
    return sites


@pytest.mark.parametrize("bins", [16, 4096])
def test_the_auc_of_summed_counts_is_within_its_bound_of_the_joined_rows(bins: int) -> None:
    layout = PooledLayout(bins, 10)
    sites = _sites(np.random.default_rng(bins), (400, 90, 60))
    pooled = layout.scores(sum(layout.site_summary(y, p, 0.5) for y, p in sites), 0.95)
    y, p = (np.concatenate(part) for part in zip(*sites))
    assert abs(pooled["auc"] - roc_auc(y, p)) <= pooled["auc_binning_error"] + 1e-12  # float rounding when no pair shares a bin
    assert pooled["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-7)
    assert pooled["accuracy"] == np.mean((p >= 0.5) == (y == 1)) and pooled["n"] == len(y)
    if bins == 4096:
        assert pooled["auc_binning_error"] < 1e-3 and pooled["auprc"] == pytest.approx(average_precision(y, p), abs=5e-3)
    low, high = pooled["auc_ci"]
    assert low < pooled["auc"] < high


def test_without_a_positive_anywhere_the_pooled_auc_is_undefined() -> None:
    layout = PooledLayout(64, 5)
    summary = layout.site_summary(np.zeros(20), np.linspace(0, 1, 20), 0.5)
    scores = layout.scores(summary, 0.95)
    assert scores["auc"] is None and scores["auc_ci"] is None and scores["accuracy"] == pytest.approx(0.5)
