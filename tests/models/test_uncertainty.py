from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from workbench.models.uncertainty import Resamples, auc_interval, compare_aucs, delong_covariance


def _binormal(rng: np.random.Generator, positives: int, negatives: int, auc: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose true AUC is `auc`: positives N(d, 1), negatives N(0, 1), AUC = Φ(d / √2)."""
    d = np.sqrt(2) * norm.ppf(auc)
    return np.r_[np.ones(positives), np.zeros(negatives)], np.r_[rng.normal(d, 1, positives), rng.normal(0, 1, negatives)]


def _naive_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DeLong et al. (1988), eqs. as printed: ψ over every (positive, negative) pair, structural components, S10/m + S01/n."""
    components = []
    for score in (a, b):
        x, z = score[y == 1], score[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        components.append((psi.mean(axis=1), psi.mean(axis=0)))
    v10 = np.vstack([c[0] for c in components])
    v01 = np.vstack([c[1] for c in components])
    return np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]


def test_delong_covariance_equals_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y, a = _binormal(rng, 17, 60, 0.8)
    a = np.round(a, 1)  # ties within and across classes
    b = np.round(a + rng.normal(0, 0.8, len(a)), 1)
    aucs, covariance = delong_covariance(y, np.vstack([a, b]))
    assert covariance == pytest.approx(_naive_delong(y, a, b), rel=1e-12)
    x, z = a[y == 1], a[y == 0]
    assert aucs[0] == pytest.approx(((x[:, None] > z) + 0.5 * (x[:, None] == z)).mean())


def test_delong_variance_matches_the_bootstrap_variance() -> None:
    rng = np.random.default_rng(1)
    y, score = _binormal(rng, 40, 160, 0.78)
    _, covariance = delong_covariance(y, score)
    draws = Resamples.draw(y, np.random.default_rng(2), 4000)
    boot = [delong_covariance(y[rows], score[rows])[0][0] for rows in draws.indices]
    assert np.var(boot) == pytest.approx(covariance[0, 0], rel=0.15)


@pytest.mark.parametrize(("positives", "negatives", "auc"), [(30, 90, 0.75), (15, 105, 0.85)])
def test_auc_intervals_cover_the_true_auc_at_their_level(positives: int, negatives: int, auc: float) -> None:
    rng = np.random.default_rng(positives)
    covered = 0
    for _ in range(200):
        y, score = _binormal(rng, positives, negatives, auc)
        interval = auc_interval(y, score, 0.95)
        assert interval is not None
        covered += interval[0] <= auc <= interval[1]
    assert covered >= 180  # >= 90 % of 200 replicates for a 95 % interval (the binomial 1st percentile at p=0.95 is 184)


def test_paired_test_controls_its_false_positives_and_finds_a_real_difference() -> None:
    rng = np.random.default_rng(4)
    false, found = 0, 0
    for _ in range(200):
        y, latent = _binormal(rng, 25, 95, 0.75)
        same_a, same_b = latent + rng.normal(0, 0.5, len(y)), latent + rng.normal(0, 0.5, len(y))  # two equally good models
        false += compare_aucs(y, same_a, same_b).excludes_zero  # type: ignore[union-attr]
        better = latent + rng.normal(0, 0.1, len(y))
        worse = latent + rng.normal(0, 3.0, len(y))
        found += compare_aucs(y, better, worse).excludes_zero  # type: ignore[union-attr]
    assert false <= 20 and found >= 100, (false, found)  # measured: 11 false of 200 (5.5 %), 128 found


def test_intervals_need_two_rows_of_each_class() -> None:
    y = np.array([1, 0, 0, 0, 0])
    score = np.linspace(0, 1, 5)
    assert auc_interval(y, score) is None and compare_aucs(y, score, score[::-1]) is None


def test_a_perfect_ranking_has_a_point_interval() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    assert auc_interval(y, np.arange(6.0)) == (1.0, 1.0)


def test_bootstrap_resamples_keep_the_class_counts_and_repeat_with_the_seed() -> None:
    y = np.r_[np.ones(7), np.zeros(30)]
    first, second = Resamples.draw(y, np.random.default_rng(5), 50), Resamples.draw(y, np.random.default_rng(5), 50)
    assert np.array_equal(first.indices, second.indices)
    assert (y[first.indices].sum(axis=1) == 7).all()
    errors = np.random.default_rng(6).random(len(y))
    low, high = first.mean_interval(errors)
    assert low < errors.mean() < high
