"""The aggregator's attacks on an update: exact where algebra allows it, and no claimed recovery where it does not."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.models.logistic import Logistic
from workbench.models.mlp import MLP
from workbench.models.model import Family, sgd_epochs
from workbench.privacy.update_leakage import (
    DEFAULT_TOLERANCE,
    Reconstruction,
    UpdateView,
    attack_update,
    class_means_attack,
    ratio_attack,
    recovered,
)

LR, L2 = 0.5, 0.01


def _view(family: Family, start: np.ndarray, Z: np.ndarray, y: np.ndarray, *, epochs: int = 1, batch_size: int | None = None, l2: float = L2) -> UpdateView:
    """What the aggregator holds after a site trained from `start` on (Z, y) as the workbench trains it."""
    end = sgd_epochs(family, start, Z, y, l2=l2, learning_rate=LR, epochs=epochs, batch_size=batch_size, rng=np.random.default_rng(0))
    steps = epochs * -(-len(y) // (batch_size or len(y)))
    hidden = family.hidden if isinstance(family, MLP) else 0
    return UpdateView(family.name, hidden, start, end, LR, family.penalty_grad(start.copy(), l2), steps, Z.mean(axis=0))


def _site(rng: np.random.Generator, rows: int, features: int, positives: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    Z = rng.normal(size=(rows, features))
    y = (rng.random(rows) < 0.4).astype(float) if positives is None else np.r_[np.ones(positives), np.zeros(rows - positives)]
    return Z, y


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_one_records_gradient_gives_the_record_and_its_label_exactly_from_any_global_model(label: float) -> None:
    rng = np.random.default_rng(1)
    Z, y = rng.normal(size=(1, 12)), np.array([label])
    for start in (np.zeros(13), rng.normal(size=13)):
        view = _view(Logistic(), start, Z, y)
        found = ratio_attack(view, 12)
        np.testing.assert_allclose(found.records[0], Z[0], atol=1e-9)
        assert found.labels.tolist() == [int(label)]
        leakage = attack_update(view, Z, y)
        assert (leakage.records, leakage.recovered, leakage.share) == (1, 1, 1.0)


def test_one_records_gradient_through_the_mlps_first_layer_gives_the_record() -> None:
    rng = np.random.default_rng(2)
    family = MLP(8)
    Z, y = rng.normal(size=(1, 6)), np.array([1.0])
    view = _view(family, family.init_params(6, rng), Z, y)
    found = ratio_attack(view, 6)
    assert len(found.records) == 8  # one reconstruction per hidden unit, each the record
    np.testing.assert_allclose(found.records, np.repeat(Z, 8, axis=0), atol=1e-8)
    assert attack_update(view, Z, y).share == 1.0


def test_several_local_steps_on_one_record_without_penalty_still_give_it_away() -> None:
    """Every step's gradient is a multiple of [z, 1], so their sum is too: epochs do not hide a lone record."""
    rng = np.random.default_rng(3)
    Z, y = rng.normal(size=(1, 5)), np.array([0.0])
    view = _view(Logistic(), np.zeros(6), Z, y, epochs=5, l2=0.0)
    assert view.steps == 5 and attack_update(view, Z, y).recovered == 1


def test_a_full_batch_gradient_over_many_records_recovers_none() -> None:
    rng = np.random.default_rng(4)
    Z, y = _site(rng, 300, 10)
    for start in (np.zeros(11), rng.normal(scale=0.3, size=11)):
        leakage = attack_update(_view(Logistic(), start, Z, y), Z, y)
        assert leakage.records == 300 and leakage.recovered == 0, leakage
    family = MLP(16)
    assert attack_update(_view(family, family.init_params(10, rng), Z, y), Z, y).recovered == 0


def test_mini_batch_sgd_over_many_records_recovers_none() -> None:
    rng = np.random.default_rng(5)
    Z, y = _site(rng, 200, 8)
    leakage = attack_update(_view(Logistic(), np.zeros(9), Z, y, batch_size=1), Z, y)
    assert leakage.recovered == 0 and leakage.by_attack["class_means"] == 0  # several steps: the class-means premise fails


def test_a_lone_positive_among_many_rows_is_given_away_by_the_first_full_batch_update() -> None:
    """From a zero-weight start every prediction is the same, so the update is a difference of class sums: with the
    site's mean record (which plain moments reveal) a class of one is its record."""
    rng = np.random.default_rng(6)
    Z, y = _site(rng, 250, 10, positives=1)
    view = _view(Logistic(), np.zeros(11), Z, y)
    means = class_means_attack(view)
    np.testing.assert_allclose(means.records[0], Z[0], atol=1e-9)
    np.testing.assert_allclose(means.records[1], Z[1:].mean(axis=0), atol=1e-9)
    leakage = attack_update(view, Z, y)
    assert leakage.by_attack == {"ratio": 0, "class_means": 1} and leakage.recovered == 1
    assert attack_update(UpdateView(**{**vars(view), "mean_record": None}), Z, y).recovered == 0  # without the moments, no class means
    assert attack_update(_view(Logistic(), np.full(11, 0.1), Z, y), Z, y).recovered == 0  # a non-zero start breaks the premise


def test_recovered_needs_the_label_and_every_feature_within_the_tolerance() -> None:
    Z, y = np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([1, 0])

    def hits(candidate: list[float], label: int) -> list[bool]:
        return recovered(Z, y, Reconstruction(np.array([candidate]), np.array([label]))).tolist()

    assert hits([0.0, 1.0 + DEFAULT_TOLERANCE * 0.9], 1) == [True, False]
    assert hits([0.0, 1.0 + DEFAULT_TOLERANCE * 1.1], 1) == [False, False]
    assert hits([0.0, 1.0], 0) == [False, False]
    assert hits([np.nan, 1.0], 1) == [False, False]
    with pytest.raises(ValueError, match="tolerance"):
        recovered(Z, y, Reconstruction(Z, y.astype(np.int64)), tolerance=0.0)
