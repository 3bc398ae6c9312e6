"""A one-hidden-layer perceptron (tanh) for binary outcomes, as one flat parameter vector.

Written in numpy rather than torch: the models federated here are small, numpy
keeps the install light, and flat vectors are what aggregation and encryption
operate on anyway.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


class MLP:
    name = "mlp"

    def __init__(self, hidden: int) -> None:
        self.hidden = hidden

    def _unpack(self, params: np.ndarray, n_inputs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        h = self.hidden
        W1 = params[: n_inputs * h].reshape(n_inputs, h)
        b1 = params[n_inputs * h : n_inputs * h + h]
        w2 = params[n_inputs * h + h : n_inputs * h + 2 * h]
        return W1, b1, w2, float(params[-1])

    def size(self, n_inputs: int) -> int:
        return n_inputs * self.hidden + 2 * self.hidden + 1

    def init_params(self, n_inputs: int, rng: np.random.Generator) -> np.ndarray:
        """Glorot-uniform weights, zero biases: the seed fixes the start, so runs repeat."""
        params = np.zeros(self.size(n_inputs))
        limit1 = np.sqrt(6.0 / (n_inputs + self.hidden))
        params[: n_inputs * self.hidden] = rng.uniform(-limit1, limit1, n_inputs * self.hidden)
        limit2 = np.sqrt(6.0 / (self.hidden + 1))
        start = n_inputs * self.hidden + self.hidden
        params[start : start + self.hidden] = rng.uniform(-limit2, limit2, self.hidden)
        return params

    def loss_and_grad(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        """Mean log-loss plus l2/2 on the weights (not biases), with backpropagated gradient."""
        n_inputs = Z.shape[1]
        W1, b1, w2, b2 = self._unpack(params, n_inputs)
        hidden = np.tanh(Z @ W1 + b1)
        logits = hidden @ w2 + b2
        loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits) + 0.5 * l2 * (np.sum(W1 * W1) + w2 @ w2))
        residual = (expit(logits) - y) / len(y)
        back = np.outer(residual, w2) * (1.0 - hidden**2)
        grad = np.concatenate(
            [
                (Z.T @ back + l2 * W1).ravel(),
                back.sum(axis=0),
                hidden.T @ residual + l2 * w2,
                [residual.sum()],
            ]
        )
        return loss, grad

    def per_example_grads(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each row's backpropagated log-loss gradient, laid out as params: [W1 (row-major), b1, w2, b2].

        The same backpropagation as loss_and_grad, kept per row instead of summed: W1's gradient for
        a row is the outer product of its inputs and its hidden-layer error. Vectorized over rows
        (rows x inputs x hidden floats at once), which suits DP-SGD's batches of a few hundred rows.
        """
        n_rows, n_inputs = Z.shape
        W1, b1, w2, b2 = self._unpack(params, n_inputs)
        hidden = np.tanh(Z @ W1 + b1)
        residual = expit(hidden @ w2 + b2) - y
        back = residual[:, None] * w2[None, :] * (1.0 - hidden**2)
        grads: np.ndarray = np.concatenate(
            [
                (Z[:, :, None] * back[:, None, :]).reshape(n_rows, n_inputs * self.hidden),
                back,
                residual[:, None] * hidden,
                residual[:, None],
            ],
            axis=1,
        )
        return grads

    def penalty_grad(self, params: np.ndarray, l2: float) -> np.ndarray:
        """l2 times the weights W1 and w2; 0 for the unpenalized biases b1 and b2."""
        n_inputs = (params.size - 2 * self.hidden - 1) // self.hidden
        W1, _, w2, _ = self._unpack(params, n_inputs)
        return np.concatenate([l2 * W1.ravel(), np.zeros(self.hidden), l2 * w2, [0.0]])

    def predict_proba(self, params: np.ndarray, Z: np.ndarray) -> np.ndarray:
        W1, b1, w2, b2 = self._unpack(params, Z.shape[1])
        logits: np.ndarray = np.tanh(Z @ W1 + b1) @ w2 + b2
        return expit(logits)

    def param_names(self, inputs: list[str]) -> list[str]:
        h = range(self.hidden)
        return [*(f"W1[{i},{j}]" for i in inputs for j in h), *(f"b1[{j}]" for j in h), *(f"w2[{j}]" for j in h), "b2"]
