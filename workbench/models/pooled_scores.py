"""Scores on every site's held-out rows together, from totals of per-site counts: no prediction leaves a site.

A pooled-test AUC compares every positive with every negative across sites, which
seems to need all predictions in one place. It does not, to within a bound that is
known: each site counts its positives and negatives in `auc_bins` equal-width bins of
predicted probability, and the AUC of the summed counts differs from the AUC of the
joined rows only through pairs that share a bin, each of which it counts one half. So
the exact pooled AUC lies within ±½·Σ_b pos_b·neg_b / (P·N) of the binned one
(`auc_binning_error`, reported beside it). DeLong's variance comes from the same counts
(each row's structural component is that of its bin). Brier score and accuracy are
exact from sums (squared errors in fixed point, `FRACTION_BITS`), with normal and Wilson
intervals; ECE and the reliability curve from per-bin sums. The totals are taken by
masking (`crypto/masked_sum.py`), so the coordinator sees only the sums over sites.

Not pooled: the calibration slope and intercept (a logistic fit needs an iteration of
sums per step) and bootstrap intervals (they resample rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.models.calibration import equal_width_bins, reliability
from workbench.models.uncertainty import logit_interval, wilson_interval, z_value

if TYPE_CHECKING:
    import numpy as np

FRACTION_BITS = 24
"""Squared errors are summed as integers of 2^-24: exact to ~6e-8 a row, far below any figure's interval."""


@dataclass(frozen=True)
class PooledLayout:
    """Where each count lies in a site's summary vector; every site and the coordinator use the same one."""

    auc_bins: int
    calibration_bins: int

    @property
    def size(self) -> int:
        return 2 * self.auc_bins + 5 + 3 * self.calibration_bins

    def site_summary(self, y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
        """A site's counts for one model, as int64: histograms by class, counts, fixed-point sums, reliability sums."""
        import numpy as np

        positive = y == 1
        which = equal_width_bins(p, self.auc_bins)
        error = (p - y) ** 2
        scale = float(1 << FRACTION_BITS)
        calibration_bin = equal_width_bins(p, self.calibration_bins)
        return np.concatenate(
            [
                np.bincount(which[positive], minlength=self.auc_bins),
                np.bincount(which[~positive], minlength=self.auc_bins),
                [len(y), int(positive.sum()), int(((p >= threshold) == positive).sum())],
                [int(np.rint(error * scale).sum()), int(np.rint(error**2 * scale).sum())],
                np.bincount(calibration_bin, minlength=self.calibration_bins),
                np.rint(np.bincount(calibration_bin, weights=p * scale, minlength=self.calibration_bins)),
                np.bincount(calibration_bin, weights=y, minlength=self.calibration_bins),
            ]
        ).astype(np.int64)

    def scores(self, total: np.ndarray, level: float) -> dict[str, Any]:
        """Pooled figures from the sum of the sites' summaries."""
        import numpy as np

        b, c = self.auc_bins, self.calibration_bins
        positives_by_bin, negatives_by_bin = total[:b].astype(np.float64), total[b : 2 * b].astype(np.float64)
        n, positives, correct = (int(v) for v in total[2 * b : 2 * b + 3])
        squared, fourth = (float(v) / (1 << FRACTION_BITS) for v in total[2 * b + 3 : 2 * b + 5])
        counts = total[2 * b + 5 : 2 * b + 5 + c]
        sum_p = total[2 * b + 5 + c : 2 * b + 5 + 2 * c] / float(1 << FRACTION_BITS)
        sum_y = total[2 * b + 5 + 2 * c :].astype(np.float64)
        brier = squared / n
        brier_se = float(np.sqrt(max(fourth / n - brier**2, 0.0) / max(n - 1, 1)))
        half = z_value(level) * brier_se
        return {
            "n": n,
            "positives": positives,
            **_binned_auc(positives_by_bin, negatives_by_bin, level),
            "brier": brier,
            "brier_ci": (brier - half, brier + half),
            "accuracy": correct / n,
            "accuracy_ci": wilson_interval(correct, n, level),
            **reliability(counts, sum_p, sum_y),
        }


def _binned_auc(positives: np.ndarray, negatives: np.ndarray, level: float) -> dict[str, Any]:
    """AUC, its bound from binning, DeLong's logit interval and binned average precision, from class histograms."""
    import numpy as np

    m, n = positives.sum(), negatives.sum()
    if m == 0 or n == 0:
        return {"auc": None, "auc_ci": None, "auc_binning_error": None, "auprc": None}
    negatives_below = np.cumsum(negatives) - negatives
    positives_above = positives[::-1].cumsum()[::-1] - positives
    v10 = (negatives_below + 0.5 * negatives) / n  # each positive's share of negatives it outscores, bin by bin
    v01 = (positives_above + 0.5 * positives) / m  # each negative's share of positives that outscore it
    auc = float(np.sum(positives * v10) / m)
    variance = float(np.sum(positives * (v10 - auc) ** 2) / (m - 1) / m + np.sum(negatives * (v01 - auc) ** 2) / (n - 1) / n) if m > 1 and n > 1 else None
    true_positives = positives[::-1].cumsum()  # thresholds at bin edges, highest first
    predicted = (positives + negatives)[::-1].cumsum()
    step = positives[::-1] > 0
    precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0)
    return {
        "auc": auc,
        "auc_ci": None if variance is None else logit_interval(auc, variance, level),
        "auc_binning_error": float(0.5 * np.sum(positives * negatives) / (m * n)),
        "auprc": float(np.sum(positives[::-1][step] / m * precision[step])),
    }
