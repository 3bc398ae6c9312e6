from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import expit

from workbench.models.features import FeatureSpec
from workbench.models.metrics import binary_metrics
from workbench.models.mlp import MLP
from workbench.models.model import ModelSpec, fit_model, sgd_epochs


def _xor_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An outcome no linear model can capture: risk rises when two inputs share a sign."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (rng.random(n) < expit(3 * X[:, 0] * X[:, 1])).astype(float)
    return X, y


def test_mlp_gradient_matches_finite_differences() -> None:
    X, y = _xor_like(200)
    family = MLP(hidden=4)
    start = family.init_params(2, np.random.default_rng(0))
    error = check_grad(lambda p: family.loss_and_grad(p, X, y, 0.1)[0], lambda p: family.loss_and_grad(p, X, y, 0.1)[1], start)
    assert error < 1e-5


def test_mlp_learns_what_logistic_cannot() -> None:
    X, y = _xor_like(4000)
    features = FeatureSpec(numeric=["a", "b"])
    rng = np.random.default_rng(0)
    auc = {
        family: binary_metrics(y, fit_model(X, y, features, ModelSpec(family=family, hidden=8), rng).predict_proba(X))["auc"] for family in ("logistic", "mlp")
    }
    assert auc["logistic"] < 0.6 < 0.75 < auc["mlp"]


def test_named_params_follow_the_feature_names() -> None:
    X, y = _xor_like(300)
    model = fit_model(X, y, FeatureSpec(numeric=["a", "b"]), ModelSpec(), np.random.default_rng(0))
    assert list(model.named_params()) == ["a", "b", "intercept"]
    mlp = fit_model(X, y, FeatureSpec(numeric=["a", "b"]), ModelSpec(family="mlp", hidden=3), np.random.default_rng(0))
    assert len(mlp.named_params()) == 2 * 3 + 3 + 3 + 1 == len(mlp.params)


def test_sgd_moves_downhill_and_proximal_term_holds_it_back() -> None:
    X, y = _xor_like(1000)
    family = ModelSpec().build()
    start = np.zeros(3)
    kwargs = dict(l2=0.0, learning_rate=0.5, epochs=3, batch_size=50)
    free = sgd_epochs(family, start, X, y, rng=np.random.default_rng(1), **kwargs)
    held = sgd_epochs(family, start, X, y, rng=np.random.default_rng(1), proximal_mu=1.0, **kwargs)
    assert family.loss_and_grad(free, X, y, 0.0)[0] < family.loss_and_grad(start, X, y, 0.0)[0]
    assert np.linalg.norm(held - start) < np.linalg.norm(free - start)
    again = sgd_epochs(family, start, X, y, rng=np.random.default_rng(1), **kwargs)
    assert np.array_equal(free, again)


def test_model_spec_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="family"):
        ModelSpec(family="forest")  # type: ignore[arg-type]


def test_a_fixed_number_of_steps_is_that_many_batches_whatever_the_rows() -> None:
    X, y = _xor_like(100)
    family = ModelSpec().build()
    kwargs = dict(l2=0.0, learning_rate=0.5, batch_size=30)
    by_epochs = sgd_epochs(family, np.zeros(3), X, y, epochs=2, rng=np.random.default_rng(1), **kwargs)  # 4 batches an epoch
    by_steps = sgd_epochs(family, np.zeros(3), X, y, epochs=1, steps=8, rng=np.random.default_rng(1), **kwargs)
    assert np.array_equal(by_epochs, by_steps)
    fewer = sgd_epochs(family, np.zeros(3), X, y, epochs=1, steps=5, rng=np.random.default_rng(1), **kwargs)
    assert not np.array_equal(fewer, by_steps)
