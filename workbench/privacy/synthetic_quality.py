"""How faithful and how private a synthetic table is, measured at a site against its own rows (only the figures leave).

Fidelity: the total-variation distance of every 1- and 2-way marginal on the declared bins, the largest difference of
a pairwise correlation, and the propensity mean squared error (pMSE: how well a classifier tells real from synthetic
rows; 0 when it cannot, 0.25 at most with equal numbers of each; Snoke et al. 2018).
Privacy: distance to closest record (DCR) against the site's training rows and, as the yardstick, against as many of
its held-out rows: a generator that copies training rows puts synthetic rows closer to them than to rows it never saw,
so the share of synthetic rows closer to a training row than to a held-out one is 0.5 when nothing is memorized; and
the nearest-neighbour distance ratio (closest over second closest: near 0 flags a near copy).

The metrics are small and numpy-only: `sdmetrics` (with copulas, plotly and tqdm) and `syntheval` (with lightgbm,
seaborn and pcametric) would install here, but each works on pandas frames of real rows at one place and brings a
plotting stack into every install for a few formulas that run at each site on its own rows (docs/synthetic.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from workbench.privacy.synthetic import ColumnBins


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Between two count vectors (or tables) as distributions: half the L1 distance of their shares."""
    import numpy as np

    p, q = a.ravel() / max(a.sum(), 1), b.ravel() / max(b.sum(), 1)
    return float(0.5 * np.abs(p - q).sum())


def marginal_distances(real: np.ndarray, synthetic: np.ndarray, sizes: Sequence[int]) -> dict[str, float]:
    """Mean and largest total-variation distance over every 1-way and every 2-way marginal, from bin codes."""
    import numpy as np

    from workbench.privacy.synthetic import all_pairs

    def counts(codes: np.ndarray, i: int, j: int | None = None) -> np.ndarray:
        cells = codes[:, i] if j is None else codes[:, i] * sizes[j] + codes[:, j]
        return np.bincount(cells, minlength=sizes[i] * (1 if j is None else sizes[j]))

    one = [total_variation(counts(real, i), counts(synthetic, i)) for i in range(len(sizes))]
    two = [total_variation(counts(real, i, j), counts(synthetic, i, j)) for i, j in all_pairs(list(range(len(sizes))))] or [0.0]
    return {"tv_1way_mean": float(np.mean(one)), "tv_1way_max": max(one), "tv_2way_mean": float(np.mean(two)), "tv_2way_max": max(two)}


def embed(columns: dict[str, Any], bins: Sequence[ColumnBins]) -> np.ndarray:
    """Rows as points: a numeric column scaled to [0, 1] by its outer edges (a missing value at 0, with an indicator
    column beside it), a categorical one as one-hot columns."""
    import numpy as np

    parts = []
    for values, column in zip(columns.values(), bins):
        if column.edges is not None:
            low, high = column.edges[0], column.edges[-1]
            scaled = np.clip((np.asarray(values, dtype=float) - low) / (high - low), 0, 1)
            parts.append(np.nan_to_num(scaled)[:, None])
            if column.missing:
                parts.append(np.isnan(scaled)[:, None])
        else:
            parts.append(np.asarray(values)[:, None] == np.arange(column.size)[None, :])
    return np.hstack(parts).astype(float) if parts else np.zeros((0, 0))


def correlation_gap(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Largest absolute difference between a pairwise correlation in the real and in the synthetic rows (embedded), over
    the pairs whose correlation both define (a column constant in either, as a rare flag in a small site's held-out rows
    can be, has none)."""
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = np.corrcoef(real, rowvar=False), np.corrcoef(synthetic, rowvar=False)
    defined = np.isfinite(a) & np.isfinite(b) & ~np.eye(len(a), dtype=bool)
    return float(np.abs(a - b)[defined].max(initial=0.0))


def propensity_mse(real: np.ndarray, synthetic: np.ndarray, rng: np.random.Generator) -> float:
    """pMSE of an L2 logistic classifier of real vs synthetic rows, with as many synthetic rows as real ones."""
    import numpy as np

    from workbench.models.logistic import Logistic
    from workbench.models.model import fit_full

    sample = synthetic[rng.choice(len(synthetic), size=min(len(real), len(synthetic)), replace=False)]
    Z = np.vstack([real, sample])
    label = np.r_[np.zeros(len(real)), np.ones(len(sample))]
    family = Logistic()
    params = fit_full(family, Z, label, 1e-3, family.init_params(Z.shape[1], rng))
    share = label.mean()
    return float(np.mean((family.predict_proba(params, Z) - share) ** 2))


def _closest_two(points: np.ndarray, reference: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Each point's distances to its closest and second closest reference row (Euclidean), in chunks to bound memory."""
    import numpy as np

    out = np.empty((len(points), 2))
    squared = (reference**2).sum(axis=1)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        distances = (block**2).sum(axis=1)[:, None] - 2 * block @ reference.T + squared[None, :]
        out[start : start + chunk] = np.sqrt(np.clip(np.partition(distances, 1, axis=1)[:, :2], 0, None))
    return out


def closest_records(synthetic: np.ndarray, train: np.ndarray, holdout: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """DCR and NNDR of the synthetic rows against the training rows and against as many held-out rows: the held-out
    figures are what the same generator would give if it had never seen the rows, the yardstick of the training ones."""
    import numpy as np

    size = min(len(train), len(holdout))
    train = train[rng.choice(len(train), size=size, replace=False)]
    holdout = holdout[rng.choice(len(holdout), size=size, replace=False)]
    to_train, to_holdout = _closest_two(synthetic, train), _closest_two(synthetic, holdout)
    closer = np.mean(to_train[:, 0] < to_holdout[:, 0]) + 0.5 * np.mean(to_train[:, 0] == to_holdout[:, 0])

    def ratio(closest: np.ndarray) -> float:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.median(np.where(closest[:, 1] > 0, closest[:, 0] / closest[:, 1], 1.0)))

    return {
        "dcr_share_closer_to_train": float(closer),
        "dcr_train_median": float(np.median(to_train[:, 0])),
        "dcr_holdout_median": float(np.median(to_holdout[:, 0])),
        "nndr_train_median": ratio(to_train),
        "nndr_holdout_median": ratio(to_holdout),
        "compared_rows": int(size),
    }
