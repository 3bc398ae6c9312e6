"""L2-regularized logistic regression as a flat vector [coefficients..., intercept]."""

from __future__ import annotations

import numpy as np
from scipy.special import expit


class Logistic:
    """Convex, so every optimizer reaches the same optimum: the clean baseline for federated comparisons."""

    name = "logistic"

    def init_params(self, n_inputs: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(n_inputs + 1)

    def loss_and_grad(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        """Mean log-loss plus l2/2 |w|^2 (intercept unpenalized) on standardized inputs, and its gradient."""
        weights, intercept = params[:-1], params[-1]
        logits = Z @ weights + intercept
        loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits) + 0.5 * l2 * weights @ weights)
        residual = (expit(logits) - y) / len(y)
        grad = np.empty_like(params)
        grad[:-1] = Z.T @ residual + l2 * weights
        grad[-1] = residual.sum()
        return loss, grad

    def predict_proba(self, params: np.ndarray, Z: np.ndarray) -> np.ndarray:
        logits: np.ndarray = Z @ params[:-1] + params[-1]
        return expit(logits)

    def param_names(self, inputs: list[str]) -> list[str]:
        return [*inputs, "intercept"]
