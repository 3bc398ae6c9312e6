"""Local fine-tuning of a federated model at each site: the personalization step the field compares against.

A global model serves the average site; a site unlike the others (other case mix, other
coding habits) may do better starting from it and taking a few steps on its own rows.
The fine-tuned model keeps the global standardization, so it reads features as the
federated one does, and is evaluated as a model of its own (`{save_as}_personalized`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import numpy as np

    from workbench.models.model import Model


class PersonalizeParams(BaseModel):
    """How much local work each site does on the final global model: `epochs` passes or exactly `steps` batches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int | None = Field(None, ge=1, le=1_000, description="Passes over the site's training rows.")
    steps: int | None = Field(None, ge=1, le=100_000, description="Mini-batch steps, whatever the site's size (instead of epochs).")
    learning_rate: float | None = Field(None, gt=0.0, allow_inf_nan=False, description="Step size; default: the training's.")
    save_as: str | None = Field(None, description="Name of the fine-tuned model; default: the federated model's name + _personalized.")

    @model_validator(mode="after")
    def _one_amount_of_work(self) -> PersonalizeParams:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("personalize needs exactly one of epochs or steps (how much local work each site does)")
        return self

    def name(self, federated: str) -> str:
        return self.save_as or f"{federated}_personalized"


def fine_tune(
    model: Model, X: np.ndarray, y: np.ndarray, how: PersonalizeParams, learning_rate: float, batch_size: int | None, rng: np.random.Generator
) -> Model:
    """`model` after `how`'s local SGD on rows (X, y), with the same features, family, penalty and standardization."""
    from dataclasses import replace

    from workbench.models.model import sgd_epochs

    params = sgd_epochs(
        model.spec.build(),
        model.params,
        model.standardizer.apply(X),
        y,
        l2=model.spec.l2,
        learning_rate=how.learning_rate or learning_rate,
        epochs=how.epochs or 1,
        batch_size=batch_size,
        rng=rng,
        steps=how.steps,
    )
    return replace(model, params=params)
