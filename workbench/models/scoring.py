"""Everything `evaluate` reports of one model at one site, each figure with its interval, so every model reads alike.

Kept apart from `metrics.binary_metrics`, which federated evaluation calls every round
and must stay cheap: the intervals here cost a bootstrap, paid once per evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.models.calibration import calibration
from workbench.models.metrics import average_precision, roc_auc
from workbench.models.uncertainty import Resamples, auc_interval, compare_aucs

if TYPE_CHECKING:
    import numpy as np


def held_out_scores(y: np.ndarray, p: np.ndarray, resamples: Resamples, level: float, threshold: float, bins: int) -> dict[str, Any]:
    """AUC, AUPRC, Brier, and accuracy, sensitivity and specificity at `threshold`, each with a `<name>_ci`; calibration;
    the counts behind them."""
    import numpy as np

    squared_error = (p - y) ** 2
    correct = ((p >= threshold) == (y == 1)).astype(np.float64)
    positives, negatives = int(np.sum(y == 1)), int(np.sum(y != 1))
    # a stratified resample keeps both class counts, so each rate is a mean over all rows of a per-row share
    found = correct * (y == 1) * len(y) / positives if positives else None
    rejected = correct * (y != 1) * len(y) / negatives if negatives else None
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "auc": roc_auc(y, p),
        "auc_ci": auc_interval(y, p, level),
        "auprc": average_precision(y, p),
        "auprc_ci": resamples.interval(average_precision, y, p, level) if y.sum() else None,
        "brier": float(squared_error.mean()),
        "brier_ci": resamples.mean_interval(squared_error, level),
        "accuracy": float(correct.mean()),
        "accuracy_ci": resamples.mean_interval(correct, level),
        "sensitivity": None if found is None else float(found.mean()),
        "sensitivity_ci": None if found is None else resamples.mean_interval(found, level),
        "specificity": None if rejected is None else float(rejected.mean()),
        "specificity_ci": None if rejected is None else resamples.mean_interval(rejected, level),
        "threshold": threshold,
        **calibration(y, p, bins),
    }


def versus(y: np.ndarray, p: np.ndarray, baseline: str, p_baseline: np.ndarray, level: float) -> dict[str, Any] | None:
    """A model's AUC against the baseline's on the same rows (DeLong's paired test), as metrics.json keeps it."""
    compared = compare_aucs(y, p, p_baseline, level)
    if compared is None:
        return None
    return {
        "baseline": baseline,
        "auc_difference": compared.difference,
        "auc_difference_ci": compared.interval,
        "p_value": compared.p_value,
        "significant": compared.excludes_zero,
    }
