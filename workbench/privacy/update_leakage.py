"""What an honest-but-curious aggregator can reconstruct of a site's training records from the update it received.

Membership inference asks what a released model reveals; this asks what the *messages of training* reveal to the party
that combines them. The aggregator knows the plan (model family, learning rate, l2, batch size, local epochs: every node
is told it), the global model it sent (`start`) and what came back (`end`). For one local step of gradient descent it
can therefore read the gradient exactly:

    g = (start - end) / learning_rate - penalty_grad(start)

and the gradient of a linear or first-layer-linear model is a weighted sum of the very records it was computed on.
Two attacks follow from that, both exact algebra rather than optimisation, so a success is a proof and not a lucky fit:

- **ratio** (Phong et al. 2017, "Privacy-preserving deep learning: revisited and enhanced"; Zhu et al. 2019): for
  logistic regression g = mean_i (p_i - y_i) [z_i, 1], so g_w / g_b is the (p - y)-weighted mean of the batch's
  standardized records: *the* record when the batch holds one, and the label follows from the sign of g_b (p - y < 0
  only for y = 1). For the MLP the same holds per hidden unit k: grad W1[:, k] / grad b1[k].
- **class means** (logistic, global weights all zero, as in round 1): every p_i equals sigma(intercept) = p, so
  g_b = p - mean(y) gives the share of positives and, with the site's mean record m (which the aggregator reads in
  the clear when moments are pooled without protection), g_w = p m - mean(y z) gives the mean record of each class.
  A site with a single positive (or a single negative) among its training rows gives that record away, whatever the
  batch size.

What is not attacked, and why: several local steps (mini-batches, epochs) sum gradients taken at points the aggregator
does not know, and a batch of n records has n * d unknowns against d + 1 numbers in one update, so beyond the cases
above no algebra separates the records; optimisation attacks (DLG and kin) may still get close on small batches, and
across many rounds the unknowns are the same records, so a long federation gives an optimiser more to work with. The
figures here are therefore lower bounds on update leakage, like the membership figures are on model leakage.

"Recovered" is stated, not tuned: a record counts as recovered when some reconstruction has the record's label and lies
within `tolerance` of its standardized features in *every* feature (max abs error; default 0.01, one hundredth of a
pooled standard deviation). Pure numpy: the audit step calls it at the site that holds the records, and only counts
leave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_TOLERANCE = 0.01
"""Max abs error, in pooled standard deviations, at which a reconstruction counts as the record (in every feature)."""

_TINY = 1e-12
"""A denominator below this (relative to the gradient's scale) carries no record: the attack skips it."""


@dataclass(frozen=True)
class UpdateView:
    """What the aggregator holds about one update: enough to read the gradient behind it.

    `start` is the global model it sent, `end` the parameters that came back (a site's update, or the average it
    decrypted), `penalty` the l2 term's gradient at `start` (the plan is public, so the aggregator subtracts it),
    `steps` the local steps the plan implies (the attacks are exact for one), and `mean_record` the mean standardized
    record behind the update when the aggregator knows it (plain moments; zero for the pooled average), else None.
    """

    family: str
    hidden: int
    start: FloatArray
    end: FloatArray
    learning_rate: float
    penalty: FloatArray
    steps: int
    mean_record: FloatArray | None

    def gradient(self) -> FloatArray:
        """The mean gradient per local step: exact for one step, a step-averaged pseudo-gradient for several."""
        g: FloatArray = (self.start - self.end) / (self.learning_rate * self.steps) - self.penalty
        return g


@dataclass(frozen=True)
class Reconstruction:
    """Candidate records (rows, standardized) and the label each candidate claims, from one attack."""

    records: FloatArray
    labels: npt.NDArray[np.int64]


@dataclass(frozen=True)
class Leakage:
    """How many of the records behind an update some reconstruction matched, and by which attack."""

    records: int
    recovered: int
    by_attack: dict[str, int]
    tolerance: float

    @property
    def share(self) -> float:
        return self.recovered / self.records if self.records else 0.0


def ratio_attack(view: UpdateView, n_inputs: int) -> Reconstruction:
    """g_w / g_b (logistic), or grad W1[:, k] / grad b1[k] for each hidden unit k (MLP): the (p - y)-weighted mean record.

    The label is read from the sign of the output bias's gradient, mean(p - y): negative only if positives dominate.
    """
    g = view.gradient()
    output_bias = float(g[-1])
    label = np.int64(output_bias < 0)
    if view.family == "logistic":
        weights, biases = g[:-1, None], g[-1:]
    else:
        h = view.hidden
        weights, biases = g[: n_inputs * h].reshape(n_inputs, h), g[n_inputs * h : n_inputs * h + h]
    usable = np.abs(biases) > _TINY * max(1.0, float(np.abs(g).max()))
    records: FloatArray = (weights[:, usable] / biases[usable]).T
    return Reconstruction(records, np.full(len(records), label, dtype=np.int64))


def class_means_attack(view: UpdateView) -> Reconstruction:
    """The mean record of each class, when every prediction equals the same p (logistic, weights all zero, one step).

    g_b = p - q with q the share of positives, and g_w = p m - q mean(z | y = 1), so mean(z | y = 1) = (p m - g_w) / q
    and mean(z | y = 0) = (m - q mean(z | y = 1)) / (1 - q). Empty when the premises fail: another family, a global
    model with non-zero weights, several local steps, no known mean record, or a share of positives outside (0, 1).
    """
    empty = Reconstruction(np.empty((0, len(view.start) - 1)), np.empty(0, dtype=np.int64))
    if view.family != "logistic" or view.steps != 1 or view.mean_record is None or np.any(view.start[:-1] != 0):
        return empty
    g, m = view.gradient(), view.mean_record
    p = float(1.0 / (1.0 + np.exp(-view.start[-1])))
    q = p - float(g[-1])
    positives_sum = p * m - g[:-1]  # q * mean(z | y = 1)
    records, labels = [], []
    if q > _TINY:
        records.append(positives_sum / q)
        labels.append(1)
    if 1 - q > _TINY:
        records.append((m - positives_sum) / (1 - q))
        labels.append(0)
    if not records:
        return empty
    return Reconstruction(np.vstack(records), np.asarray(labels, dtype=np.int64))


def recovered(Z: FloatArray, y: npt.ArrayLike, reconstruction: Reconstruction, tolerance: float = DEFAULT_TOLERANCE) -> npt.NDArray[np.bool_]:
    """Which records (rows of Z, with labels y) some candidate matches: the same label, and every feature within tolerance."""
    labels = np.asarray(y).astype(np.int64)
    if Z.ndim != 2 or len(Z) != len(labels):
        raise ValueError(f"records must be (rows x features) with one label a row, got {Z.shape} and {labels.shape}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    found = np.zeros(len(Z), dtype=bool)
    for candidate, label in zip(reconstruction.records, reconstruction.labels, strict=True):
        if np.all(np.isfinite(candidate)):
            found |= (labels == label) & (np.abs(Z - candidate).max(axis=1) <= tolerance)
    return found


def attack_update(view: UpdateView, Z: FloatArray, y: npt.ArrayLike, tolerance: float = DEFAULT_TOLERANCE) -> Leakage:
    """Every attack on one update, scored against the records that were behind it (standardized, with their labels)."""
    attacks = {"ratio": ratio_attack(view, Z.shape[1]), "class_means": class_means_attack(view)}
    hits = {name: recovered(Z, y, reconstruction, tolerance) for name, reconstruction in attacks.items()}
    either = np.logical_or.reduce(list(hits.values()))
    return Leakage(len(Z), int(either.sum()), {name: int(found.sum()) for name, found in hits.items()}, tolerance)
