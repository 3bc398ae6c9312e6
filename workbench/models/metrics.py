"""Binary-outcome metrics shared by every evaluation, so sites and baselines are scored alike."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score


def binary_metrics(y: np.ndarray, probability: np.ndarray, threshold: float = 0.5) -> dict[str, float | int | None]:
    """AUC, accuracy at `threshold`, Brier score, and the counts behind them.

    AUC is undefined when the held-out rows hold a single class (a small site
    with no deaths in its test split): it is reported as None, not as 0.5.
    """
    positives = int(y.sum())
    auc = float(roc_auc_score(y, probability)) if 0 < positives < len(y) else None
    return {
        "auc": auc,
        "accuracy": float(accuracy_score(y, probability >= threshold)),
        "brier": float(brier_score_loss(y, probability)),
        "n": int(len(y)),
        "positives": positives,
    }
