from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import expit

from workbench.models.features import FeatureSpec
from workbench.models.logistic import LogisticModel, Standardizer, fit_params, loss_and_grad


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    true = np.array([1.5, -1.0, 0.0, -0.5])
    y = (rng.random(n) < expit(X @ true[:-1] + true[-1])).astype(float)
    return X, y, true


def test_gradient_matches_finite_differences() -> None:
    X, y, _ = _data(300)
    for l2 in (0.0, 0.3):
        error = check_grad(lambda p, l2=l2: loss_and_grad(p, X, y, l2)[0], lambda p, l2=l2: loss_and_grad(p, X, y, l2)[1],
                           np.array([0.2, -0.1, 0.4, 0.05]))
        assert error < 1e-5


def test_fit_recovers_true_coefficients() -> None:
    X, y, true = _data(40_000)
    assert np.allclose(fit_params(X, y, l2=0.0), true, atol=0.06)


def test_penalty_shrinks_coefficients_but_not_intercept() -> None:
    X, y, _ = _data(2000)
    loose, tight = fit_params(X, y, 0.0), fit_params(X, y, 10.0)
    assert np.abs(tight[:-1]).sum() < 0.2 * np.abs(loose[:-1]).sum()
    assert tight[-1] == pytest.approx(np.log(y.mean() / (1 - y.mean())), abs=0.05)


def test_standardizer_from_moments_equals_from_data() -> None:
    X = np.random.default_rng(1).normal(3.0, 2.0, size=(500, 4))
    X[:, 2] = 7.0  # a constant column keeps scale 1
    direct = Standardizer.from_data(X)
    pieces = [X[:100], X[100:]]
    merged = Standardizer.from_moments(sum(len(p) for p in pieces), sum(p.sum(0) for p in pieces), sum((p**2).sum(0) for p in pieces))
    assert np.allclose(direct.center, merged.center) and np.allclose(direct.scale, merged.scale)
    assert direct.scale[2] == 1.0 and np.allclose(direct.apply(X).mean(0), 0.0)


def test_model_predicts_probabilities_and_names_coefficients() -> None:
    X, y, _ = _data(1000)
    model = LogisticModel.fit(X, y, FeatureSpec(numeric=["a", "b", "c"]), l2=0.01)
    p = model.predict_proba(X)
    assert p.shape == (1000,) and ((p > 0) & (p < 1)).all()
    assert list(model.coefficients()) == ["a", "b", "c", "intercept"]
    assert model.coefficients()["a"] > 0 > model.coefficients()["b"]
