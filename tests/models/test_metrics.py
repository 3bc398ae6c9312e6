from __future__ import annotations

import numpy as np
import pytest

from workbench.models.metrics import binary_metrics


def test_metrics_of_a_perfect_and_a_useless_score() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = binary_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect["auc"] == 1.0 and perfect["accuracy"] == 1.0 and perfect["brier"] == pytest.approx(0.025)
    assert binary_metrics(y, np.full(4, 0.5))["auc"] == 0.5


def test_auc_is_undefined_for_a_single_class() -> None:
    result = binary_metrics(np.zeros(5), np.full(5, 0.1))
    assert result["auc"] is None and result["positives"] == 0 and result["n"] == 5


def test_agrees_with_scikit_learn_including_ties() -> None:
    from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score

    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.2).astype(float)
    score = np.round(rng.random(500) * 0.6 + 0.3 * y, 2)  # rounding makes ties
    ours = binary_metrics(y, score)
    assert ours["auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y, score >= 0.5))
    assert ours["brier"] == pytest.approx(brier_score_loss(y, score))


def test_average_precision_agrees_with_scikit_learn_including_ties() -> None:
    from sklearn.metrics import average_precision_score

    from workbench.models.metrics import average_precision

    rng = np.random.default_rng(4)
    for _ in range(20):
        y = (rng.random(80) < 0.25).astype(float)
        score = np.round(rng.random(80) + 0.4 * y, 1)
        assert average_precision(y, score) == pytest.approx(average_precision_score(y, score), abs=1e-12)
    assert average_precision(np.zeros(4), np.arange(4.0)) is None
