"""A model a party holds: how inputs are encoded and scaled, which family, which parameters.

Every trainer (local, pooled, federated) produces this same object, so `evaluate`
scores them alike and nothing downstream cares how a model was trained.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from workbench.models.features import FeatureSpec, design_matrix

if TYPE_CHECKING:  # numpy, scipy and the families load where they are used: `workbench validate` reads ModelSpec only
    import numpy as np
    import polars as pl

    from workbench.models.features import TableRef
    from workbench.models.standardize import Standardizer


class Family(Protocol):
    name: str

    def init_params(self, n_inputs: int, rng: np.random.Generator) -> np.ndarray: ...
    def loss_and_grad(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]: ...
    def per_example_grads(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(rows x params) gradients of each row's unregularized loss: DP-SGD clips each row's before summing."""
        ...

    def penalty_grad(self, params: np.ndarray, l2: float) -> np.ndarray:
        """Gradient of the l2 penalty alone: it reads no data, so DP-SGD adds it outside the noised sum."""
        ...

    def predict_proba(self, params: np.ndarray, Z: np.ndarray) -> np.ndarray: ...
    def param_names(self, inputs: list[str]) -> list[str]: ...


class RowScorer(Protocol):
    """What `evaluate` needs of a model a site holds: a probability for each row of one of the site's tables."""

    def predict_rows(self, frame: pl.DataFrame, where: TableRef) -> np.ndarray: ...


class ModelSpec(BaseModel):
    """Which model family and its regularization, as a recipe states it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["logistic", "mlp"] = Field("logistic", description="logistic regression, or a one-hidden-layer perceptron.")
    hidden: int = Field(16, ge=1, le=1024, description="Hidden units (mlp only).")
    l2: float = Field(0.01, ge=0.0, le=1e6, description="L2 penalty on standardized weights.")

    def build(self) -> Family:
        from workbench.models.logistic import Logistic
        from workbench.models.mlp import MLP

        return Logistic() if self.family == "logistic" else MLP(self.hidden)


@dataclass
class Model:
    features: FeatureSpec
    spec: ModelSpec
    standardizer: Standardizer
    params: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.spec.build().predict_proba(self.params, self.standardizer.apply(X))

    def predict_rows(self, frame: pl.DataFrame, where: TableRef) -> np.ndarray:
        return self.predict_proba(design_matrix(frame, self.features, where))

    def linear_form(self) -> tuple[np.ndarray, float]:
        """A logistic model's logit as `X @ weights + bias` on raw design-matrix rows, the standardizer folded in: a party
        that scores encrypted rows then needs only plaintext products and sums, and the querier never learns the scaling."""
        if self.spec.family != "logistic":
            raise ValueError(f"a {self.spec.family} model has no linear form: only a logistic model's logit is linear in its inputs")
        weights = self.params[:-1] / self.standardizer.scale
        return weights, float(self.params[-1] - weights @ self.standardizer.center)

    def named_params(self) -> dict[str, float]:
        names = self.spec.build().param_names(self.features.names())
        return {name: float(value) for name, value in zip(names, self.params, strict=True)}


def model_bytes(model: Model) -> bytes:
    """What sending a model costs: its standardizer and parameters as float64 arrays (npz)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, center=model.standardizer.center, scale=model.standardizer.scale, params=model.params)
    return buffer.getvalue()


def model_from_bytes(data: bytes, features: FeatureSpec, spec: ModelSpec) -> Model:
    """The model a receiver rebuilds from `model_bytes`; features and family are the recipe's, public to every party."""
    import numpy as np

    from workbench.models.standardize import Standardizer

    with np.load(io.BytesIO(data)) as arrays:
        return Model(features, spec, Standardizer(arrays["center"], arrays["scale"]), arrays["params"])


def fit_full(family: Family, Z: np.ndarray, y: np.ndarray, l2: float, init: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Minimize the regularized loss with L-BFGS: deterministic, no learning rate to tune."""
    import numpy as np
    from scipy.optimize import minimize

    result = minimize(family.loss_and_grad, init.astype(np.float64, copy=True), args=(Z, y, l2), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return result.x


def fit_model(X: np.ndarray, y: np.ndarray, features: FeatureSpec, spec: ModelSpec, rng: np.random.Generator) -> Model:
    """Train on one table (a site's own rows, or the pooled oracle's) with its own standardization."""
    from workbench.models.standardize import Standardizer

    standardizer = Standardizer.for_features(features, X)
    family = spec.build()
    params = fit_full(family, standardizer.apply(X), y, spec.l2, family.init_params(X.shape[1], rng))
    return Model(features, spec, standardizer, params)


def sgd_epochs(
    family: Family,
    params: np.ndarray,
    Z: np.ndarray,
    y: np.ndarray,
    *,
    l2: float,
    learning_rate: float,
    epochs: int,
    batch_size: int | None,
    rng: np.random.Generator,
    proximal_mu: float = 0.0,
    steps: int | None = None,
) -> np.ndarray:
    """Mini-batch SGD from `params` (batch_size None: full batch); with proximal_mu > 0, FedProx's local objective.

    The proximal term mu/2 |w - w_global|^2 keeps a site with few or unusual rows
    from drifting far from the global model between rounds. With `steps`, exactly
    that many batches (epochs reshuffled as they run out) instead of `epochs` passes:
    local work that costs the same at a site of 50 rows and one of 5,000.
    """
    import itertools

    anchor = params.copy()
    params = params.copy()
    batch_size = batch_size or len(y)

    def batches() -> Iterator[np.ndarray]:
        for _ in range(epochs) if steps is None else itertools.count():
            order = rng.permutation(len(y))
            for start in range(0, len(y), batch_size):
                yield order[start : start + batch_size]

    for batch in batches() if steps is None else itertools.islice(batches(), steps):
        _, grad = family.loss_and_grad(params, Z[batch], y[batch], l2)
        if proximal_mu:
            grad = grad + proximal_mu * (params - anchor)
        params -= learning_rate * grad
    return params
