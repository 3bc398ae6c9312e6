from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from workbench.models.thresholds import ThresholdRule


def _rows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.25).astype(float)
    return y, np.round(1 / (1 + np.exp(-(rng.normal(-1, 1, 300) + 1.5 * y))), 2)  # rounding makes ties


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_youden_is_the_roc_point_farthest_above_the_diagonal(seed: int) -> None:
    from sklearn.metrics import roc_curve

    y, p = _rows(seed)
    fpr, tpr, thresholds = roc_curve(y, p)
    assert ThresholdRule(rule="youden").choose(y, p) == pytest.approx(thresholds[np.argmax(tpr - fpr)])


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_a_target_sensitivity_is_reached_by_the_highest_threshold_that_reaches_it(target: float) -> None:
    y, p = _rows(3)
    threshold = ThresholdRule(rule="sensitivity", target=target).choose(y, p)
    assert threshold is not None
    assert np.mean(p[y == 1] >= threshold) >= target
    higher = np.unique(p)[np.unique(p) > threshold]
    assert not higher.size or np.mean(p[y == 1] >= higher.min()) < target


def test_a_single_class_has_no_threshold_and_a_target_belongs_to_its_rule() -> None:
    assert ThresholdRule(rule="youden").choose(np.zeros(5), np.linspace(0, 1, 5)) is None
    with pytest.raises(ValidationError, match="needs a target"):
        ThresholdRule(rule="sensitivity")
    with pytest.raises(ValidationError, match="only it takes one"):
        ThresholdRule(rule="youden", target=0.9)
