"""Per-example gradients, which DP-SGD clips row by row, against the summed gradient every other trainer uses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import expit

from workbench.models.logistic import Logistic
from workbench.models.mlp import MLP
from workbench.models.model import Family

FAMILIES = [pytest.param(Logistic(), id="logistic"), pytest.param(MLP(4), id="mlp")]


def _problem(family: Family, n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 3))
    y = (rng.random(n) < expit(Z @ np.array([1.0, -0.5, 0.3]))).astype(float)
    start = family.init_params(3, rng)
    params = start + rng.normal(0.0, 0.3, start.shape)  # off zero (logistic starts there, MLP biases too), so no term of the gradient vanishes
    return params, Z, y


@pytest.mark.parametrize("family", FAMILIES)
def test_mean_of_per_example_grads_is_the_unregularized_gradient(family: Family) -> None:
    params, Z, y = _problem(family)
    grads = family.per_example_grads(params, Z, y)
    assert grads.shape == (len(y), params.size)
    np.testing.assert_allclose(grads.mean(axis=0), family.loss_and_grad(params, Z, y, 0.0)[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("family", FAMILIES)
def test_one_row_matches_finite_differences(family: Family) -> None:
    params, Z, y = _problem(family)
    row = slice(7, 8)
    numeric = approx_fprime(params, lambda p: family.loss_and_grad(p, Z[row], y[row], 0.0)[0], 1e-7)
    np.testing.assert_allclose(family.per_example_grads(params, Z, y)[7], numeric, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_penalty_grad_is_what_l2_adds_to_the_gradient(family: Family) -> None:
    params, Z, y = _problem(family)
    with_penalty, without = family.loss_and_grad(params, Z, y, 0.7)[1], family.loss_and_grad(params, Z, y, 0.0)[1]
    np.testing.assert_allclose(family.penalty_grad(params, 0.7), with_penalty - without, rtol=0, atol=1e-12)
    assert family.penalty_grad(params, 0.7)[-1] == 0.0  # the output bias is never penalized
