from __future__ import annotations

import numpy as np
from scipy.optimize import check_grad
from scipy.special import expit

from workbench.models.logistic import Logistic
from workbench.models.model import fit_full


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    true = np.array([1.5, -1.0, 0.0, -0.5])
    y = (rng.random(n) < expit(X @ true[:-1] + true[-1])).astype(float)
    return X, y, true


def test_gradient_matches_finite_differences() -> None:
    X, y, _ = _data(300)
    family = Logistic()
    for l2 in (0.0, 0.3):
        error = check_grad(
            lambda p, l2=l2: family.loss_and_grad(p, X, y, l2)[0], lambda p, l2=l2: family.loss_and_grad(p, X, y, l2)[1], np.array([0.2, -0.1, 0.4, 0.05])
        )
        assert error < 1e-5


def test_fit_recovers_true_coefficients() -> None:
    X, y, true = _data(40_000)
    assert np.allclose(fit_full(Logistic(), X, y, 0.0, np.zeros(4)), true, atol=0.06)


def test_penalty_shrinks_coefficients_but_not_intercept() -> None:
    X, y, _ = _data(2000)
    loose, tight = fit_full(Logistic(), X, y, 0.0, np.zeros(4)), fit_full(Logistic(), X, y, 10.0, np.zeros(4))
    assert np.abs(tight[:-1]).sum() < 0.2 * np.abs(loose[:-1]).sum()
    assert abs(tight[-1] - np.log(y.mean() / (1 - y.mean()))) < 0.05
