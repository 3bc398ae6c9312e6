"""Binary-outcome metrics shared by every evaluation, so sites and baselines are scored alike.

Computed with numpy and scipy's rank function rather than scikit-learn's
metric functions: the results are identical (a test checks it against
scikit-learn), but scikit-learn's input validation costs ~10 ms a call, which
federated evaluation pays at every site in every round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and scipy load where they are used, not when `workbench validate` loads the steps
    import numpy as np


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Mann-Whitney form of the ROC AUC (ties count one half); None when only one class is present."""
    from scipy.stats import rankdata

    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_metrics(y: np.ndarray, probability: np.ndarray, threshold: float = 0.5) -> dict[str, float | int | None]:
    """AUC, accuracy at `threshold`, Brier score, and the counts behind them.

    AUC is undefined when the held-out rows hold a single class (a small site
    with no deaths in its test split): it is reported as None, not as 0.5.
    """
    import numpy as np

    return {
        "auc": roc_auc(y, probability),
        "accuracy": float(np.mean((probability >= threshold) == (y == 1))),
        "brier": float(np.mean((probability - y) ** 2)),
        "n": int(len(y)),
        "positives": int(y.sum()),
    }


def average_precision(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the precision-recall curve as scikit-learn's `average_precision_score` defines it (a step function,
    no interpolation): Σ (R_k − R_{k−1}) · P_k over distinct thresholds, highest first; None without positives."""
    import numpy as np

    positives = int(np.sum(y == 1))
    if positives == 0:
        return None
    order = np.argsort(-score, kind="mergesort")
    ranked, hits = score[order], (y[order] == 1).astype(np.float64)
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    true_positives = np.cumsum(hits)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall_gain = np.diff(np.r_[0.0, true_positives]) / positives
    return float(np.sum(recall_gain * precision))
