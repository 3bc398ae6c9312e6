"""Whether a model's probabilities mean what they say at a site: calibration slope and intercept, ECE, reliability.

A federated model can rank a small site's patients well (its AUC) and still promise
them the risks of the large sites it mostly learned from; a clinician acting on a 20 %
risk needs the 20 % to hold. Measured as the field does (Van Calster et al. 2016):

- calibration slope: b in logit P(y=1) = a + b·logit(p), fitted by logistic regression;
  1 is ideal, below 1 the predictions are too extreme (over-fitting), above too modest;
- calibration intercept (calibration-in-the-large): a with the slope held at 1
  (logit(p) as an offset); 0 is ideal, positive means the model under-predicts risk;
- expected calibration error: Σ_b (n_b/n)·|mean y − mean p| over equal-width bins of p;
- the reliability curve: per non-empty bin, mean p, observed rate and rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

EDGE = 1e-12
"""Probabilities are clipped to [EDGE, 1 − EDGE] before their logit: a model can output 0 or 1 in float64."""
LARGEST_COEFFICIENT = 1e3
"""A fitted slope or intercept beyond this is a separation artefact (the rows split perfectly), reported as undefined."""


def _logistic_fit(y: np.ndarray, x: np.ndarray | None, offset: np.ndarray, iterations: int = 50) -> np.ndarray | None:
    """Newton's method for logit P(y=1) = a [+ b·x] + offset; None when it does not converge to finite coefficients."""
    import numpy as np

    design = np.ones((len(y), 1)) if x is None else np.column_stack([np.ones(len(y)), x])
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(design @ beta + offset, -700, 700)))  # exp overflows past 709
        weights = p * (1 - p)
        hessian = design.T @ (design * weights[:, None])
        try:
            step = np.linalg.solve(hessian, design.T @ (y - p))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > LARGEST_COEFFICIENT:
            return None
        if np.max(np.abs(step)) < 1e-10:
            return beta
    return None


def calibration(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Slope, intercept (None where a class is missing or the fit separates), ECE and the reliability curve."""
    import numpy as np

    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(probability, dtype=np.float64), EDGE, 1 - EDGE)
    logit = np.log(p / (1 - p))
    both = 0 < y.sum() < len(y)
    slope_fit = _logistic_fit(y, logit, np.zeros(len(y))) if both else None
    intercept_fit = _logistic_fit(y, None, logit) if both else None
    which = equal_width_bins(p, bins)
    counts = np.bincount(which, minlength=bins)
    return {
        "calibration_slope": None if slope_fit is None else float(slope_fit[1]),
        "calibration_intercept": None if intercept_fit is None else float(intercept_fit[0]),
        **reliability(counts, np.bincount(which, weights=p, minlength=bins), np.bincount(which, weights=y, minlength=bins)),
    }


def equal_width_bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Each probability's bin among `bins` equal-width bins of [0, 1], 1 itself in the last."""
    import numpy as np

    return np.minimum((np.asarray(p) * bins).astype(np.int64), bins - 1)


def reliability(counts: np.ndarray, sum_p: np.ndarray, sum_y: np.ndarray) -> dict[str, Any]:
    """ECE and the reliability curve from per-bin rows, Σp and Σy: the same from one site's rows or from sums over sites."""
    import numpy as np

    kept = counts > 0
    n = int(counts.sum())
    return {
        "ece": float(np.sum(np.abs(sum_y[kept] - sum_p[kept])) / n),
        "reliability": [[float(sp / k), float(sy / k), int(k)] for sp, sy, k in zip(sum_p[kept], sum_y[kept], counts[kept])],
    }
