from __future__ import annotations

import numpy as np
import pytest

from workbench.models.calibration import calibration


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def test_calibrated_predictions_have_slope_one_intercept_zero_and_small_ece() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 20_000)
    y = (rng.random(len(p)) < p).astype(float)
    c = calibration(y, p)
    assert c["calibration_slope"] == pytest.approx(1.0, abs=0.05)
    assert c["calibration_intercept"] == pytest.approx(0.0, abs=0.05)
    assert c["ece"] < 0.02
    assert sum(count for _, _, count in c["reliability"]) == len(p)


def test_overconfident_predictions_have_a_slope_below_one_and_agree_with_scikit_learn() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    truth = rng.uniform(0.05, 0.95, 5000)
    y = (rng.random(len(truth)) < truth).astype(float)
    extreme = 1 / (1 + np.exp(-2 * _logit(truth)))  # logits doubled: too sure
    c = calibration(y, extreme)
    reference = LogisticRegression(C=1e12, tol=1e-10, max_iter=1000).fit(_logit(extreme)[:, None], y)
    assert c["calibration_slope"] == pytest.approx(reference.coef_[0, 0], abs=1e-4)
    assert c["calibration_slope"] == pytest.approx(0.5, abs=0.05)


def test_under_predicted_risk_has_a_positive_intercept() -> None:
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.1, 0.6, 5000)
    y = (rng.random(len(truth)) < truth).astype(float)
    c = calibration(y, truth / 2)
    assert c["calibration_intercept"] > 0.3 and c["ece"] > 0.1


def test_one_class_or_a_perfect_split_leaves_slope_and_intercept_undefined() -> None:
    p = np.linspace(0.1, 0.9, 10)
    single = calibration(np.zeros(10), p)
    assert single["calibration_slope"] is None and single["calibration_intercept"] is None and single["ece"] > 0
    assert calibration((p > 0.5).astype(float), p)["calibration_slope"] is None
