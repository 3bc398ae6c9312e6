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

    def per_example_grads(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each row's log-loss gradient (p - y) * [z, 1], laid out as params; their mean is loss_and_grad's at l2 = 0.

        Closed form rather than autograd: one matrix, no per-row loop, and DP-SGD needs every row's
        gradient separately so that it can bound each row's influence by clipping.
        """
        residual = expit(Z @ params[:-1] + params[-1]) - y
        grads: np.ndarray = np.column_stack([residual[:, None] * Z, residual])
        return grads

    def penalty_grad(self, params: np.ndarray, l2: float) -> np.ndarray:
        """l2 * w, and 0 for the unpenalized intercept."""
        grad = l2 * params
        grad[-1] = 0.0
        return grad

    def predict_proba(self, params: np.ndarray, Z: np.ndarray) -> np.ndarray:
        logits: np.ndarray = Z @ params[:-1] + params[-1]
        return expit(logits)

    def param_names(self, inputs: list[str]) -> list[str]:
        return [*inputs, "intercept"]
