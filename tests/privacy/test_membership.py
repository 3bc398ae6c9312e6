from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from workbench.privacy import membership
from workbench.privacy.membership import (
    attack_metrics,
    bootstrap_intervals,
    log_roc_points,
    loss_scores,
    rmia_scores,
    roc_curve,
    tpr_name,
    true_label_probability,
)

# Metrics on score distributions with known answers.


def test_identical_distributions_give_chance_within_the_bootstrap_interval() -> None:
    rng = np.random.default_rng(11)
    member, nonmember = rng.normal(size=5000), rng.normal(size=5000)
    metrics = attack_metrics(member, nonmember)
    intervals = bootstrap_intervals(member, nonmember, np.random.default_rng(12))
    low, high = intervals["auc"]
    assert low <= 0.5 <= high and high - low < 0.05
    assert metrics.auc == pytest.approx(0.5, abs=0.02)
    assert metrics.tpr_at_fpr[0.01] == pytest.approx(0.01, abs=0.006)
    assert metrics.advantage < 0.05


def test_perfectly_separated_scores() -> None:
    metrics = attack_metrics(np.arange(100, 200), np.arange(100))
    assert metrics.auc == 1.0 and metrics.advantage == 1.0 and metrics.tpr_at_fpr[0.001] == 1.0
    assert (metrics.members, metrics.nonmembers) == (100, 100)


def test_gaussian_shift_matches_the_closed_forms() -> None:
    """Members ~ N(d, 1), non-members ~ N(0, 1): AUC = Φ(d/√2), TPR(f) = 1 - Φ(Φ⁻¹(1 - f) - d), advantage = 2Φ(d/2) - 1."""
    rng = np.random.default_rng(5)
    shift = 1.0
    metrics = attack_metrics(rng.normal(shift, 1.0, 20_000), rng.normal(0.0, 1.0, 20_000))
    assert metrics.auc == pytest.approx(norm.cdf(shift / np.sqrt(2)), abs=0.01)
    assert metrics.tpr_at_fpr[0.01] == pytest.approx(1 - norm.cdf(norm.ppf(0.99) - shift), abs=0.02)
    assert metrics.advantage == pytest.approx(2 * norm.cdf(shift / 2) - 1, abs=0.02)


def test_tpr_at_fpr_is_the_highest_tpr_with_fpr_at_most_the_target() -> None:
    """Thresholds from the top: 10 9 | 8 (fp) | 7 | 6 (fp) | 5 | 4 (fp) | 3 | the rest are non-members.

    TP/FP along the way: (1,0) (2,0) (2,1) (3,1) (3,2) (4,2) (4,3) (5,3) ... (5,10), of 5 members and 10 non-members.
    """
    member = np.array([10, 9, 7, 5, 3])
    nonmember = np.array([8, 6, 4, 2, 1, 0, -1, -2, -3, -4])
    metrics = attack_metrics(member, nonmember, fprs=(0.05, 0.1, 0.2, 0.25))
    assert metrics.tpr_at_fpr == {0.05: 0.4, 0.1: 0.6, 0.2: 0.8, 0.25: 0.8}
    assert metrics.advantage == pytest.approx(5 / 5 - 3 / 10)
    assert metrics.auc == pytest.approx((10 + 10 + 9 + 8 + 7) / 50)


def test_a_tie_is_not_split_in_the_attackers_favour() -> None:
    """Both members tie with a non-member: no threshold flags a member without also flagging that non-member (FPR 1/2)."""
    metrics = attack_metrics(np.array([1.0, 1.0]), np.array([1.0, 0.0]), fprs=(0.4, 0.5))
    assert metrics.tpr_at_fpr == {0.4: 0.0, 0.5: 1.0}
    assert metrics.auc == pytest.approx(0.75)


def test_constant_scores_are_chance() -> None:
    metrics = attack_metrics(np.full(300, 0.7), np.full(50, 0.7))
    assert metrics.auc == 0.5 and metrics.advantage == 0.0 and metrics.tpr_at_fpr == {0.001: 0.0, 0.01: 0.0}
    fpr, tpr = roc_curve(np.full(300, 0.7), np.full(50, 0.7))
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]


def test_agrees_with_scikit_learn_including_ties() -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sklearn_roc_curve

    rng = np.random.default_rng(8)
    for members, nonmembers, decimals in ((700, 300, 2), (50, 1200, 1), (1000, 1000, 8)):
        member = np.round(rng.normal(0.4, 1.0, members), decimals)  # rounding makes ties, within and across groups
        nonmember = np.round(rng.normal(0.0, 1.0, nonmembers), decimals)
        labels = np.r_[np.ones(members), np.zeros(nonmembers)]
        scores = np.r_[member, nonmember]
        assert attack_metrics(member, nonmember).auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        fpr, tpr = roc_curve(member, nonmember)
        expected_fpr, expected_tpr, _ = sklearn_roc_curve(labels, scores, drop_intermediate=False)
        np.testing.assert_allclose(fpr, expected_fpr, rtol=0, atol=1e-15)
        np.testing.assert_allclose(tpr, expected_tpr, rtol=0, atol=1e-15)


# Bootstrap.


@dataclass
class RecordingGenerator:
    """A generator that remembers every index array it hands out, so a test can redo each resample by hand."""

    inner: np.random.Generator
    draws: list[np.ndarray]

    def integers(self, low: int, high: int, size: tuple[int, int]) -> np.ndarray:
        drawn = self.inner.integers(low, high, size=size)
        self.draws.append(drawn)
        return drawn


def test_bootstrap_equals_resampling_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorised path (bincounts over ranks, in several chunks) gives exactly the intervals of a plain loop."""
    monkeypatch.setattr(membership, "_BOOTSTRAP_CHUNK", 1500)  # a few resamples per chunk: the chunking is exercised too
    rng = np.random.default_rng(2)
    member, nonmember = np.round(rng.normal(0.5, 1.0, 120), 1), np.round(rng.normal(0.0, 1.0, 80), 1)
    recorder = RecordingGenerator(np.random.default_rng(3), [])
    intervals = bootstrap_intervals(member, nonmember, recorder, resamples=50, level=0.9, fprs=(0.05,))  # type: ignore[arg-type]
    assert len(recorder.draws) > 2
    member_rows = np.concatenate([draw for draw in recorder.draws if draw.shape[1] == len(member)])
    nonmember_rows = np.concatenate([draw for draw in recorder.draws if draw.shape[1] == len(nonmember)])
    by_hand = [attack_metrics(member[m], nonmember[n], fprs=(0.05,)).values() for m, n in zip(member_rows, nonmember_rows, strict=True)]
    assert len(by_hand) == 50
    for name, (low, high) in intervals.items():
        values = [resample[name] for resample in by_hand]
        assert (low, high) == pytest.approx(tuple(np.quantile(values, [0.05, 0.95])), abs=1e-12)


def test_bootstrap_intervals_bracket_the_estimate_and_repeat_with_the_seed() -> None:
    rng = np.random.default_rng(4)
    member, nonmember = rng.normal(0.3, 1.0, 5000), rng.normal(0.0, 1.0, 1500)
    estimate = attack_metrics(member, nonmember).values()
    intervals = bootstrap_intervals(member, nonmember, np.random.default_rng(9))
    assert intervals.keys() == estimate.keys() == {"auc", "advantage", tpr_name(0.001), tpr_name(0.01)}
    for name, (low, high) in intervals.items():
        assert low <= estimate[name] <= high, name
    assert intervals == bootstrap_intervals(member, nonmember, np.random.default_rng(9))
    assert bootstrap_intervals(np.arange(10, 20), np.arange(10), np.random.default_rng(0))["auc"] == (1.0, 1.0)


# Plot points.


def test_log_roc_points_thin_the_curve_without_inventing_points() -> None:
    rng = np.random.default_rng(6)
    fpr, tpr = roc_curve(rng.normal(0.8, 1.0, 5000), rng.normal(0.0, 1.0, 5000))
    assert len(fpr) > 5000
    x, y = log_roc_points(fpr, tpr)
    assert len(x) <= 200 and x[0] == pytest.approx(1e-4) and x[-1] == 1.0 and y[-1] == 1.0
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)
    reachable = [tpr[fpr <= value].max() for value in x]  # each point is one the attacker can reach at that FPR
    np.testing.assert_array_equal(y, reachable)
    grid = np.geomspace(1e-4, 1.0, 200)  # dropping points inside flat stretches leaves the drawn line as it was
    np.testing.assert_allclose(np.interp(np.log(grid), np.log(x), y), [tpr[fpr <= value].max() for value in grid])


# Attacks on a model that overfits, and on one that does not.


def _fit_logistic(X: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Newton's method on the mean log-loss + l2/2 |w|², intercept unpenalised: a weakly regularised fit that memorises noise when rows are few."""
    Z = np.c_[X, np.ones(len(X))]
    penalty = np.r_[np.full(X.shape[1], l2), 0.0]
    weights = np.zeros(Z.shape[1])
    for _ in range(25):
        p = expit(Z @ weights)
        hessian = (Z * (p * (1 - p))[:, None]).T @ Z / len(y) + np.diag(penalty)
        step = np.linalg.solve(hessian, Z.T @ (p - y) / len(y) + penalty * weights)
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return weights


def _predict(weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.asarray(expit(X @ weights[:-1] + weights[-1]))


def _draw(rng: np.random.Generator, rows: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """The label is the sign of the first feature, with one label in ten flipped; every other feature is noise."""
    X = rng.normal(size=(rows, features))
    y = (X[:, 0] > 0).astype(float)
    flipped = rng.random(rows) < 0.1
    y[flipped] = 1 - y[flipped]
    return X, y


@dataclass(frozen=True)
class Audit:
    loss_member: np.ndarray
    loss_nonmember: np.ndarray
    rmia_member: np.ndarray
    rmia_nonmember: np.ndarray


@pytest.fixture(scope="module")
def overfit_audit() -> Audit:
    """Eight target models, each on 100 rows of 150 features, attacked on their own members and 500 held-out rows each.

    The attacker's eight reference models are trained alike on population rows disjoint from every target's; the 2,000
    population rows z are disjoint from those too. Pooling the eight audits gives 800 members and 4,000 non-members, so
    TPR at 1 % FPR rests on 40 false positives rather than 5. BLAS runs single-threaded: on matrices this small its
    threads only contend for the shared cores (4 s instead of 0.1 s on a loaded 2-core machine).
    """
    with threadpool_limits(limits=1):
        return _overfit_audit(np.random.default_rng(2024))


def _overfit_audit(rng: np.random.Generator) -> Audit:
    rows, features, l2 = 100, 150, 0.01
    references = [_fit_logistic(*_draw(rng, rows, features), l2) for _ in range(8)]
    population_X, population_y = _draw(rng, 2000, features)
    population_reference = np.array([_predict(w, population_X) for w in references])
    scores: dict[str, list[np.ndarray]] = {"loss_member": [], "loss_nonmember": [], "rmia_member": [], "rmia_nonmember": []}
    for _ in range(8):
        member_X, member_y = _draw(rng, rows, features)
        target = _fit_logistic(member_X, member_y, l2)
        population_target = _predict(target, population_X)
        for group, (X, y) in (("member", (member_X, member_y)), ("nonmember", _draw(rng, 500, features))):
            probability = _predict(target, X)
            reference = np.array([_predict(w, X) for w in references])
            scores[f"loss_{group}"].append(loss_scores(probability, y))
            scores[f"rmia_{group}"].append(rmia_scores(probability, reference, y, population_target, population_reference, population_y))
    return Audit(**{name: np.concatenate(parts) for name, parts in scores.items()})


def test_loss_attack_finds_the_members_of_an_overfit_model(overfit_audit: Audit) -> None:
    assert attack_metrics(overfit_audit.loss_member, overfit_audit.loss_nonmember).auc > 0.7


def test_loss_attack_is_chance_on_a_model_that_generalises() -> None:
    rng = np.random.default_rng(7)
    (member_X, member_y), (nonmember_X, nonmember_y) = _draw(rng, 5000, 3), _draw(rng, 5000, 3)
    weights = _fit_logistic(member_X, member_y, 1e-4)
    metrics = attack_metrics(loss_scores(_predict(weights, member_X), member_y), loss_scores(_predict(weights, nonmember_X), nonmember_y))
    assert metrics.auc == pytest.approx(0.5, abs=0.03)


def test_rmia_beats_or_matches_loss_at_low_fpr(overfit_audit: Audit) -> None:
    rmia = attack_metrics(overfit_audit.rmia_member, overfit_audit.rmia_nonmember)
    loss = attack_metrics(overfit_audit.loss_member, overfit_audit.loss_nonmember)
    assert rmia.tpr_at_fpr[0.01] >= loss.tpr_at_fpr[0.01]
    assert rmia.tpr_at_fpr[0.01] > 0.02  # beats chance (0.01) too, not merely a weak LOSS
    all_rmia = np.r_[overfit_audit.rmia_member, overfit_audit.rmia_nonmember]
    assert all_rmia.min() >= 0.0 and all_rmia.max() <= 1.0


# The attacks' formulas.


def test_loss_scores_are_minus_the_cross_entropy_and_stay_finite() -> None:
    p1, y = np.array([0.9, 0.9, 0.2, 1.0, 0.0]), np.array([1, 0, 0, 0, 0])
    expected = [np.log(0.9), np.log(0.1), np.log(0.8), np.log(1e-12), np.log(1 - 1e-12)]
    np.testing.assert_allclose(loss_scores(p1, y), expected)
    np.testing.assert_allclose(true_label_probability(p1, y), [0.9, 0.1, 0.8, 0.0, 1.0])


def test_rmia_equals_its_definition_computed_pair_by_pair() -> None:
    rng = np.random.default_rng(10)
    x_rows, z_rows, models = 40, 60, 3
    target, reference, y = rng.random(x_rows), rng.random((models, x_rows)), rng.integers(0, 2, x_rows)
    z_target, z_reference, z_y = rng.random(z_rows), rng.random((models, z_rows)), rng.integers(0, 2, z_rows)

    def ratio(p: float, refs: np.ndarray, label: int, a: float) -> float:
        true = p if label == 1 else 1 - p
        ref_true = refs if label == 1 else 1 - refs
        return float(true / ((1 + a) / 2 * ref_true.mean() + (1 - a) / 2))

    for gamma, a in ((1.0, 0.3), (2.0, 0.3), (1.0, 1.0), (0.5, 0.0)):
        expected = [
            np.mean([ratio(target[i], reference[:, i], y[i], a) / ratio(z_target[j], z_reference[:, j], z_y[j], a) >= gamma for j in range(z_rows)])
            for i in range(x_rows)
        ]
        np.testing.assert_allclose(rmia_scores(target, reference, y, z_target, z_reference, z_y, gamma=gamma, a=a), expected, err_msg=f"{gamma=} {a=}")
    strict, lenient = (rmia_scores(target, reference, y, z_target, z_reference, z_y, gamma=g) for g in (2.0, 1.0))
    assert np.all(strict <= lenient) and np.any(strict < lenient)


def test_rmia_offline_correction_by_hand() -> None:
    """Pr(x) = 0.65 · mean(0.5, 0.7) + 0.35 = 0.74, so LR(x) = 0.9 / 0.74 ≈ 1.216.

    The population's ratios are 0.5/0.675, 0.8/0.87, 0.9/0.545 and 0.32/0.48: three at most LR(x), so the score is 3/4.
    Without the correction LR(x) would be 1.5 and the last z's 1.6, which would rank above x (score 2/4).
    """
    scores = rmia_scores(
        np.array([0.9]),
        np.array([[0.5], [0.7]]),
        np.array([1]),
        np.array([0.5, 0.8, 0.1, 0.32]),
        np.array([[0.5, 0.8, 0.6, 0.1], [0.5, 0.8, 0.8, 0.3]]),
        np.array([1, 1, 0, 1]),
    )
    assert scores.tolist() == [3 / 4]
    uncorrected = rmia_scores(np.array([0.9]), np.array([[0.5], [0.7]]), np.array([1]), np.array([0.32]), np.array([[0.1], [0.3]]), np.array([1]), a=1.0)
    assert uncorrected.tolist() == [0.0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: loss_scores([0.5, 0.5], [1, 0, 1]), "do not match"),
        (lambda: loss_scores([0.5], [2]), "0 or 1"),
        (lambda: loss_scores([1.5], [1]), r"\[0, 1\]"),
        (lambda: rmia_scores([0.5, 0.5], [0.5, 0.5], [1, 0], [0.5], [[0.5]], [1]), "reference models x rows"),
        (lambda: rmia_scores([0.5], [[0.5]], [1], [0.5], [[0.5]], [1], a=1.5), "offline coefficient"),
        (lambda: attack_metrics([0.1, np.nan], [0.2]), "finite"),
        (lambda: attack_metrics([], [0.2]), "non-empty"),
        (lambda: attack_metrics([0.1], [0.2], fprs=(2.0,)), "fprs"),
        (lambda: bootstrap_intervals([0.1], [0.2], np.random.default_rng(0), level=1.0), "level"),
    ],
)
def test_bad_inputs_are_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
