"""Membership inference against a released binary classifier: attack scores, and how well they tell members apart.

An audit asks how much better than chance an attacker who holds the released model can tell
whether a given row was in its training set. That is measured, not argued: score the site's
training rows (members) and held-out rows (non-members) with an attack, then summarise how
well the scores separate the two groups. The summaries are the ones the literature reports,
so a figure here can be set beside a published one:

- the ROC AUC, a threshold-free average that hides what matters most;
- the TPR at a low FPR (0.1 %, 1 %), which says whether the attacker can be *confident* about
  some individuals (Carlini et al. 2022, "Membership Inference Attacks From First Principles");
- the membership advantage, max over thresholds of TPR - FPR (Yeom et al. 2018): the most any
  threshold on this score gains over guessing, the quantity differential privacy bounds.

Two attacks are provided. LOSS (Yeom et al. 2018) needs nothing but the model. RMIA (Zarifzadeh
et al., ICML 2024) also uses reference models the attacker trains on population data, which
calibrates away how hard each row is, and is usually the stronger test at low FPR for little cost.

Every function here is pure numpy: no recipe, party or ledger concerns, so the audit step can
call it at each site and the report can recompute anything from the saved scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROBABILITY_CLIP = 1e-12
"""Probabilities are kept in [1e-12, 1 - 1e-12], so a confident model's log-loss stays finite (at most ~27.6 nats)."""

DEFAULT_OFFLINE_A = 0.3
"""RMIA's offline coefficient a: how far a model's probability on a row moves when the row is trained on.

Offline RMIA has only reference models that did not train on the row (OUT models) and must guess
Pr(x), the average over models that did and did not. It assumes the IN probability is a linear
function of the OUT one, Pr_in = a * Pr_out + (1 - a), so that Pr(x) = (Pr_out + Pr_in) / 2 =
(1 + a)/2 * Pr_out + (1 - a)/2. a = 1 says training on a row changes nothing; a = 0 says a trained
row is always predicted with certainty. 0.3 is the default of the authors' implementation
(ML Privacy Meter); the paper tunes it by attacking one reference model with the others, and a
low-capacity model (a regularised logistic regression) may be served better by a larger a.
"""

DEFAULT_FPRS = (0.001, 0.01)
"""The false-positive rates the literature reports TPR at: 0.1 % and 1 %."""

_BOOTSTRAP_CHUNK = 2_000_000
"""Array elements per chunk of bootstrap resamples: bounds peak memory (about 50 MB) whatever the number of rows."""


# Attack scores: higher means "more likely a member".


def true_label_probability(p1: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """The model's probability of the label each row actually has: what both attacks read.

    A binary classifier publishes Pr(y = 1); for a row with y = 0 the quantity that training
    pushes up is 1 - Pr(y = 1). Broadcasts, so a (models x rows) array of probabilities takes a
    (rows,) label vector.
    """
    p = np.asarray(p1, dtype=np.float64)
    labels = _binary_labels(y)
    if labels.shape != p.shape and (labels.ndim != 1 or p.shape[-1:] != labels.shape):
        raise ValueError(f"labels of shape {labels.shape} do not match probabilities of shape {p.shape}")
    if np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError("probabilities must lie in [0, 1]")
    result: FloatArray = np.where(labels == 1, p, 1.0 - p)
    return result


def loss_scores(probability: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """The LOSS attack (Yeom et al. 2018): minus the model's cross-entropy on each row.

    Training minimises the loss on training rows, so members tend to have lower loss than rows the
    model never saw; the gap is the generalisation gap the attack exploits. It needs no reference
    models, which makes it the baseline every audit should report.
    """
    return np.log(_clipped(true_label_probability(probability, y)))


def rmia_scores(
    target_probability: npt.ArrayLike,
    reference_probabilities: npt.ArrayLike,
    y: npt.ArrayLike,
    population_target: npt.ArrayLike,
    population_reference: npt.ArrayLike,
    population_y: npt.ArrayLike,
    *,
    gamma: float = 1.0,
    a: float = DEFAULT_OFFLINE_A,
) -> FloatArray:
    """Offline RMIA (Zarifzadeh et al., ICML 2024, "Low-Cost High-Power Membership Inference Attacks").

    For a candidate row x, LR(x) = Pr(x | target) / Pr(x): how much more probable the target
    model finds x's true label than models that did not train on x do. A row that every model
    predicts well (an easy row) gets no credit for being predicted well, which is what LOSS gets
    wrong. LR(x) is then compared with the same ratio on population rows z, which are known
    non-members: the score is the fraction of z with LR(x) / LR(z) >= gamma, in [0, 1].

    Inputs are probabilities of class 1:
    - `target_probability`, `y`: the target model on the candidate rows, and their labels;
    - `reference_probabilities`: (reference models x candidate rows), from models the attacker
      trained on population data it plausibly holds, disjoint from the target's training set;
    - `population_target`, `population_reference`, `population_y`: the same for the population
      rows z, which should be out of every reference model's training set (Pr(z) is computed with
      the same offline correction, which assumes so) and must not include the candidates.

    Pr(x) is the mean over reference models corrected offline, ((1 + a)/2) * mean + (1 - a)/2
    (see DEFAULT_OFFLINE_A). Scores take only len(z) + 1 values, so the population should hold at
    least a few thousand rows for the score to resolve FPRs of 0.1 %.
    """
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    if not 0 <= a <= 1:
        raise ValueError(f"the offline coefficient a must lie in [0, 1], got {a}")
    ratio_x = _likelihood_ratio(target_probability, reference_probabilities, y, a, "candidate")
    ratio_z = np.sort(_likelihood_ratio(population_target, population_reference, population_y, a, "population"))
    # LR(x)/LR(z) >= gamma  <=>  LR(z) <= LR(x)/gamma, as every ratio is positive: one sort and one binary search per row.
    counts = np.searchsorted(ratio_z, ratio_x / gamma, side="right")
    scores: FloatArray = counts / len(ratio_z)
    return scores


def _likelihood_ratio(target: npt.ArrayLike, reference: npt.ArrayLike, y: npt.ArrayLike, a: float, what: str) -> FloatArray:
    """Pr(x | target) / Pr(x), with Pr(x) from the OUT reference models through the offline correction."""
    target_true = _clipped(true_label_probability(_vector(target, f"{what} target probabilities"), y))
    reference_array = np.asarray(reference, dtype=np.float64)
    if reference_array.ndim != 2 or reference_array.shape[0] == 0 or reference_array.shape[1] != len(target_true):
        raise ValueError(f"{what} reference probabilities must be (reference models x rows) = (k, {len(target_true)}) with k >= 1, got {reference_array.shape}")
    reference_true = _clipped(true_label_probability(reference_array, y))
    marginal = (1 + a) / 2 * reference_true.mean(axis=0) + (1 - a) / 2
    ratio: FloatArray = target_true / marginal
    return ratio


def _binary_labels(y: npt.ArrayLike) -> npt.NDArray[np.int64]:
    labels = np.asarray(y)
    if labels.size and not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    return labels.astype(np.int64)


def _clipped(p: FloatArray) -> FloatArray:
    return np.clip(p, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)


def _vector(values: npt.ArrayLike, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite (no NaN or infinity)")
    return array


# How well scores separate members from non-members.


@dataclass(frozen=True)
class AttackMetrics:
    """What an attack achieves on one audit, and the counts a reader needs to judge it.

    `nonmembers` is here because TPR at a low FPR is only as fine as 1/nonmembers: at FPR 0.1 %
    with fewer than 1,000 non-members no false positive is allowed at all, and the figure is the
    share of members scoring above the single highest non-member (often 0).
    """

    auc: float
    tpr_at_fpr: dict[float, float]
    advantage: float
    members: int
    nonmembers: int

    def values(self) -> dict[str, float]:
        """The metrics under the names `bootstrap_intervals` uses, so an estimate and its interval pair up by key."""
        return {"auc": self.auc, "advantage": self.advantage, **{tpr_name(fpr): tpr for fpr, tpr in self.tpr_at_fpr.items()}}


def tpr_name(fpr: float) -> str:
    """The key of TPR at `fpr` in `AttackMetrics.values()` and `bootstrap_intervals`, e.g. "tpr_at_fpr_0.001"."""
    return f"tpr_at_fpr_{fpr:g}"


def roc_curve(member_scores: npt.ArrayLike, nonmember_scores: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1), flagging "member" where score >= threshold.

    Tied scores move together: a threshold cannot split a member from a non-member with the same
    score, so a tie is never resolved in the attacker's favour. The points are those of
    `sklearn.metrics.roc_curve(..., drop_intermediate=False)`.
    """
    member, nonmember = _vector(member_scores, "member scores"), _vector(nonmember_scores, "non-member scores")
    tp, fp = _roc_counts(member, nonmember)
    return fp[0] / len(nonmember), tp[0] / len(member)


def attack_metrics(member_scores: npt.ArrayLike, nonmember_scores: npt.ArrayLike, fprs: tuple[float, ...] = DEFAULT_FPRS) -> AttackMetrics:
    """AUC, TPR at each of `fprs`, and the membership advantage of an attack's scores.

    TPR at a target FPR is the highest TPR among thresholds whose FPR is <= the target (Carlini et
    al. 2022 take the last ROC point below it), so the figure is never an interpolation the
    attacker could not actually achieve. Caveat for reports: at FPR 0.1 % with fewer than 1,000
    non-members the figure is 0 or set by a single record (the highest-scoring non-member); at 1 %
    the same holds below 100. Report `nonmembers` beside it, and the bootstrap interval.
    """
    member, nonmember = _vector(member_scores, "member scores"), _vector(nonmember_scores, "non-member scores")
    _check_fprs(fprs)
    summary = _summaries(*_roc_counts(member, nonmember), len(member), len(nonmember), fprs)
    return AttackMetrics(
        auc=float(summary["auc"][0]),
        tpr_at_fpr={fpr: float(summary[tpr_name(fpr)][0]) for fpr in fprs},
        advantage=float(summary["advantage"][0]),
        members=len(member),
        nonmembers=len(nonmember),
    )


def bootstrap_intervals(
    member_scores: npt.ArrayLike,
    nonmember_scores: npt.ArrayLike,
    rng: np.random.Generator,
    resamples: int = 200,
    level: float = 0.95,
    fprs: tuple[float, ...] = DEFAULT_FPRS,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for every metric of `attack_metrics`, keyed as `AttackMetrics.values()`.

    Members and non-members are resampled separately (stratified), as the audit fixed how many of
    each it scored: pooling them would let a resample hold a different mix, adding variance the
    audit does not have. Each resample only changes how many copies of each original score there
    are, so scores are ranked once and each resample is a bincount over those ranks; a block of
    resamples is scored at once as a 2-D array. The interval covers the sampling of the audited
    rows only, not the variance of retraining the model: a second training run can land outside it.
    """
    member, nonmember = _vector(member_scores, "member scores"), _vector(nonmember_scores, "non-member scores")
    _check_fprs(fprs)
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    member_codes, nonmember_codes, distinct = _value_codes(member, nonmember)
    m, n = len(member), len(nonmember)
    chunk = max(1, _BOOTSTRAP_CHUNK // (m + n + distinct))
    blocks: list[dict[str, FloatArray]] = []
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        member_counts = _counts(member_codes[rng.integers(0, m, size=(rows, m))], distinct)
        nonmember_counts = _counts(nonmember_codes[rng.integers(0, n, size=(rows, n))], distinct)
        blocks.append(_summaries(*_cumulative_counts(member_counts, nonmember_counts), m, n, fprs))
    tail = (1 - level) / 2
    intervals: dict[str, tuple[float, float]] = {}
    for name in blocks[0]:
        low, high = np.quantile(np.concatenate([block[name] for block in blocks]), [tail, 1 - tail])
        intervals[name] = (float(low), float(high))
    return intervals


def log_roc_points(fpr: npt.ArrayLike, tpr: npt.ArrayLike, floor: float = 1e-4, points: int = 200) -> tuple[FloatArray, FloatArray]:
    """The ROC thinned for a log-FPR plot: at most `points` points, FPR from `floor` to 1.

    Low FPRs are where an attack's confidence shows, so plots use a log FPR axis, on which a raw
    ROC of thousands of points is mostly invisible clutter and FPR 0 cannot be drawn. The curve
    is read on a log grid with the same convention as `attack_metrics` (highest TPR with FPR <=
    the grid value), so the plot never shows a point the attacker cannot reach; points inside a
    flat stretch are dropped, which leaves the drawn line unchanged. Below FPR 1/non-members the
    curve is flat at its FPR-0 value: choose `floor` near that to avoid an empty left side.
    """
    fpr_array, tpr_array = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    if fpr_array.ndim != 1 or fpr_array.shape != tpr_array.shape or fpr_array.size == 0:
        raise ValueError("fpr and tpr must be 1-D arrays of the same non-zero length")
    if np.any(np.diff(fpr_array) < 0) or np.any(np.diff(tpr_array) < 0):
        raise ValueError("fpr and tpr must be non-decreasing, as roc_curve returns them")
    if not 0 < floor < 1 or points < 2:
        raise ValueError(f"floor must lie in (0, 1) and points be at least 2, got floor={floor}, points={points}")
    grid = np.geomspace(floor, 1.0, points)
    reached = np.searchsorted(fpr_array, grid, side="right") - 1
    grid_tpr = np.where(reached >= 0, tpr_array[np.maximum(reached, 0)], 0.0)
    keep = np.ones(points, dtype=bool)
    keep[1:-1] = (grid_tpr[1:-1] != grid_tpr[:-2]) | (grid_tpr[1:-1] != grid_tpr[2:])
    return grid[keep], grid_tpr[keep]


def _check_fprs(fprs: tuple[float, ...]) -> None:
    if not fprs or any(not 0 <= fpr <= 1 for fpr in fprs):
        raise ValueError(f"fprs must be a non-empty tuple of rates in [0, 1], got {fprs}")


def _value_codes(member: FloatArray, nonmember: FloatArray) -> tuple[IntArray, IntArray, int]:
    """Each score's position among the distinct pooled scores, highest first: the only thing any metric here depends on."""
    distinct, codes = np.unique(-np.concatenate([member, nonmember]), return_inverse=True)
    codes = codes.astype(np.int64).ravel()
    return codes[: len(member)], codes[len(member) :], len(distinct)


def _roc_counts(member: FloatArray, nonmember: FloatArray) -> tuple[IntArray, IntArray]:
    """True and false positives along the ROC of the scores as given: one row of the arrays bootstrap resamples fill."""
    member_codes, nonmember_codes, distinct = _value_codes(member, nonmember)
    return _cumulative_counts(_counts(member_codes[None, :], distinct), _counts(nonmember_codes[None, :], distinct))


def _counts(codes: IntArray, distinct: int) -> IntArray:
    """(rows x distinct) counts of each distinct score in each row of codes, by one flat bincount."""
    rows = codes.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * distinct)[:, None]
    counts: IntArray = np.bincount((codes + offsets).ravel(), minlength=rows * distinct).reshape(rows, distinct)
    return counts


def _cumulative_counts(member_counts: IntArray, nonmember_counts: IntArray) -> tuple[IntArray, IntArray]:
    """True and false positives at each threshold, highest first, with the (0, 0) point in front."""
    rows = member_counts.shape[0]
    zero = np.zeros((rows, 1), dtype=np.int64)
    tp = np.concatenate([zero, np.cumsum(member_counts, axis=1)], axis=1)
    fp = np.concatenate([zero, np.cumsum(nonmember_counts, axis=1)], axis=1)
    return tp, fp


def _summaries(tp: IntArray, fp: IntArray, m: int, n: int, fprs: tuple[float, ...]) -> dict[str, FloatArray]:
    """Every metric for each row of ROC counts, in integer arithmetic until the last division, so ties and small counts are exact.

    The trapezoidal AUC over a ROC whose tied scores move together equals the Mann-Whitney
    statistic with ties counted one half: a constant score gives exactly 0.5.
    """
    auc = np.sum(np.diff(fp, axis=1) * (tp[:, 1:] + tp[:, :-1]), axis=1) / (2.0 * m * n)
    advantage = np.max(tp * n - fp * m, axis=1) / (float(m) * n)
    result: dict[str, FloatArray] = {"auc": auc, "advantage": advantage}
    for fpr in fprs:
        allowed = np.floor(fpr * n + 1e-9)  # false positives allowed; the epsilon keeps 0.01 * 300 from rounding to 2.999...
        result[tpr_name(fpr)] = np.max(np.where(fp <= allowed, tp, 0), axis=1) / m
    return result
