"""L2-regularized logistic regression with its parameters as one flat vector.

Flat parameters are what federated averaging, secure aggregation and
encryption operate on, so the model exposes exactly that: a standardizer fixed
before training, and a vector [coefficients..., intercept].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from workbench.models.features import FeatureSpec


@dataclass(frozen=True)
class Standardizer:
    """Per-feature centering and scaling; constant features keep scale 1 instead of dividing by zero."""

    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_data(cls, X: np.ndarray) -> Standardizer:
        return cls.from_moments(len(X), X.sum(axis=0), (X**2).sum(axis=0))

    @classmethod
    def from_moments(cls, count: float, sums: np.ndarray, sums_of_squares: np.ndarray) -> Standardizer:
        """From counts, sums and sums of squares: what federated statistics can aggregate across sites."""
        if count <= 1:
            raise ValueError(f"standardizing needs at least two rows, got {count}")
        mean = sums / count
        variance = np.maximum(sums_of_squares / count - mean**2, 0.0)
        std = np.sqrt(variance)
        return cls(center=mean, scale=np.where(std > 1e-12, std, 1.0))

    def apply(self, X: np.ndarray) -> np.ndarray:
        return (X - self.center) / self.scale


def loss_and_grad(params: np.ndarray, Z: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """Mean log-loss plus l2/2 |w|^2 (intercept unpenalized) on standardized inputs, and its gradient."""
    weights, intercept = params[:-1], params[-1]
    logits = Z @ weights + intercept
    loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits) + 0.5 * l2 * weights @ weights)
    residual = (expit(logits) - y) / len(y)
    grad = np.empty_like(params)
    grad[:-1] = Z.T @ residual + l2 * weights
    grad[-1] = residual.sum()
    return loss, grad


def fit_params(Z: np.ndarray, y: np.ndarray, l2: float, init: np.ndarray | None = None, max_iter: int = 500) -> np.ndarray:
    """Minimize the regularized loss to convergence with L-BFGS: deterministic, no learning rate to tune."""
    start = np.zeros(Z.shape[1] + 1) if init is None else init.astype(np.float64, copy=True)
    result = minimize(loss_and_grad, start, args=(Z, y, l2), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return result.x


@dataclass
class LogisticModel:
    """A fitted (or federated) logistic regression: feature encoding, standardizer and flat parameters."""

    features: FeatureSpec
    standardizer: Standardizer
    params: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, features: FeatureSpec, l2: float) -> LogisticModel:
        standardizer = Standardizer.from_data(X)
        return cls(features, standardizer, fit_params(standardizer.apply(X), y, l2))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        Z = self.standardizer.apply(X)
        return expit(Z @ self.params[:-1] + self.params[-1])

    def coefficients(self) -> dict[str, float]:
        """Coefficients per standardized input, by name, for reports."""
        names = [*self.features.names(), "intercept"]
        return {name: float(value) for name, value in zip(names, self.params)}
