"""How sure a held-out score is: DeLong intervals and paired tests for AUC, stratified bootstrap intervals for the rest.

A site with 6 positives among 120 held-out rows has an AUC whose 95 % interval spans
a quarter of the scale; a report that compares models there without intervals
invites reading noise as gain. So every score a site computes comes with an
interval over the sampling of its held-out rows (not over retraining the model):

- AUC: DeLong et al. (1988)'s variance from the structural components, computed
  from midranks as Sun & Xu (2014) do (O(n log n)), and the interval taken on the
  logit scale, as Pepe (2003, §5.2) recommends for small samples: it stays inside
  (0, 1) and covers closer to its level than the Wald interval when the AUC is high
  and positives are few (`tests/models/test_uncertainty.py` measures coverage).
- Two models scored on the same rows: DeLong's paired test of their AUC difference,
  whose covariance term is what makes it far tighter than two separate intervals.
- Brier score, AUPRC, accuracy: percentile intervals from a bootstrap that resamples
  positives and negatives separately, as the held-out split fixed how many of each
  there are. One set of resamples serves every model at a site (common random
  numbers), so their intervals differ by the models, not by the draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and scipy load where they are used, not when `workbench validate` loads the steps
    import numpy as np

Interval = tuple[float, float]


@dataclass(frozen=True)
class AucComparison:
    """AUC of a model minus that of a baseline on the same rows, with DeLong's paired interval and two-sided p-value."""

    difference: float
    interval: Interval
    p_value: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of zero: only then does a report call the difference a gain or a loss."""
        low, high = self.interval
        return low > 0 or high < 0


def z_value(level: float) -> float:
    """The standard normal quantile of a two-sided interval at `level` (1.96 at 0.95)."""
    from scipy.stats import norm

    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return float(norm.ppf(0.5 + level / 2))


def delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Structural components of each model's AUC: (models × positives, models × negatives).

    For a positive, the share of negatives it outscores (ties one half); for a negative, the share of positives that
    outscore it. Their means are the AUC; their covariances give DeLong's variance. `scores` is (models × rows).
    """
    import numpy as np
    from scipy.stats import rankdata

    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    positive = np.asarray(y) == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise ValueError(f"DeLong's variance needs both classes among the rows; got {m} positives and {n} negatives")
    overall = rankdata(scores, axis=1)
    within_positives = rankdata(scores[:, positive], axis=1)
    within_negatives = rankdata(scores[:, ~positive], axis=1)
    v10 = (overall[:, positive] - within_positives) / n
    v01 = 1.0 - (overall[:, ~positive] - within_negatives) / m
    return v10, v01


def delong_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AUCs, their covariance matrix) of the models whose scores are the rows of `scores`, on the same held-out rows."""
    import numpy as np

    v10, v01 = delong_components(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    aucs = v10.mean(axis=1)
    covariance = np.atleast_2d(np.cov(v10, ddof=1)) / m + np.atleast_2d(np.cov(v01, ddof=1)) / n if m > 1 and n > 1 else np.full((len(aucs),) * 2, np.nan)
    return aucs, covariance


def auc_interval(y: np.ndarray, score: np.ndarray, level: float = 0.95) -> Interval | None:
    """DeLong's interval for one AUC, on the logit scale; None when a class is missing or has a single row.

    An AUC of exactly 0 or 1 (perfect separation) has DeLong variance 0 and no logit: its interval is the point
    itself, which says the rows hold no information on how far from perfect the model is.
    """

    if not _two_of_each(y):
        return None
    aucs, covariance = delong_covariance(y, score)
    return logit_interval(float(aucs[0]), float(covariance[0, 0]), level)


def logit_interval(auc: float, variance: float, level: float = 0.95) -> Interval:
    """The interval for an AUC of this variance, taken on the logit scale (delta method) and mapped back into (0, 1)."""
    import numpy as np

    if auc <= 0.0 or auc >= 1.0 or variance <= 0.0:
        return (auc, auc)
    logit = np.log(auc / (1 - auc))
    half = z_value(level) * np.sqrt(variance) / (auc * (1 - auc))
    low, high = 1 / (1 + np.exp(-(logit - half))), 1 / (1 + np.exp(-(logit + half)))
    return (float(low), float(high))


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> Interval:
    """Wilson's score interval for a proportion (an accuracy over rows), which stays inside [0, 1] at 0 % or 100 %."""
    import numpy as np

    z = z_value(level)
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (float(centre - half), float(centre + half))


def _two_of_each(y: np.ndarray) -> bool:
    """Whether DeLong's variance is defined: at least two positives and two negatives (a sample variance per class)."""
    import numpy as np

    positives = int(np.sum(y == 1))
    return positives >= 2 and len(y) - positives >= 2


def compare_aucs(y: np.ndarray, score: np.ndarray, baseline: np.ndarray, level: float = 0.95) -> AucComparison | None:
    """DeLong's paired test of AUC(score) − AUC(baseline) on the same rows; None where `auc_interval` has none."""
    import numpy as np
    from scipy.stats import norm

    if not _two_of_each(y):
        return None
    aucs, covariance = delong_covariance(y, np.vstack([score, baseline]))
    difference = float(aucs[0] - aucs[1])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    if variance <= 1e-300:  # the same ranking (or a perfect one for both): no difference, and none could be shown
        return AucComparison(difference, (difference, difference), 1.0 if difference == 0 else 0.0)
    se = float(np.sqrt(variance))
    half = z_value(level) * se
    return AucComparison(difference, (difference - half, difference + half), float(2 * norm.sf(abs(difference) / se)))


@dataclass(frozen=True)
class Resamples:
    """Row indices of `count` stratified bootstrap resamples of one site's held-out rows, shared by every model there."""

    indices: np.ndarray
    """(count × rows): each resample keeps the number of positives and of negatives of the original rows."""

    @classmethod
    def draw(cls, y: np.ndarray, rng: np.random.Generator, count: int) -> Resamples:
        import numpy as np

        if count < 2:
            raise ValueError(f"resamples must be at least 2, got {count}")
        positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
        parts = [group[rng.integers(0, len(group), size=(count, len(group)))] for group in (positives, negatives) if len(group)]
        return cls(np.hstack(parts))

    def interval(self, statistic: Callable[[np.ndarray, np.ndarray], float | None], y: np.ndarray, p: np.ndarray, level: float = 0.95) -> Interval | None:
        """Percentile interval of `statistic(y, p)` over the resamples; None if it is undefined on any of them."""
        import numpy as np

        values = []
        for rows in self.indices:
            value = statistic(y[rows], p[rows])
            if value is None:
                return None
            values.append(value)
        tail = (1 - level) / 2
        low, high = np.quantile(values, [tail, 1 - tail])
        return (float(low), float(high))

    def mean_interval(self, per_row: np.ndarray, level: float = 0.95) -> Interval:
        """Percentile interval of the mean of a per-row quantity (a squared error, a correct call) over the resamples, at once."""
        import numpy as np

        tail = (1 - level) / 2
        low, high = np.quantile(per_row[self.indices].mean(axis=1), [tail, 1 - tail])
        return (float(low), float(high))
