"""Parameters every training step shares, so local, pooled and federated models are asked for alike."""

from __future__ import annotations

from pydantic import Field

from workbench.contracts import Columns
from workbench.data.splits import SPLIT_COLUMN
from workbench.models.features import FeatureSpec
from workbench.models.model import ModelSpec
from workbench.steps.base import StepParams


class TrainingParams(StepParams):
    table: str = Field("data", description="Table holding features, label and the `split` step's column at each site.")
    label: str = Field(description="Binary outcome column.")
    features: FeatureSpec = Field(description="Columns the model uses and their encoding (the same at every site).")
    model: ModelSpec = Field(default_factory=ModelSpec, description="Model family and regularization.")

    def reads(self) -> tuple[Columns, ...]:
        """What every training step reads at each hospital: the features, the label and the split's column."""
        return (
            Columns(self.table, tuple(self.features.columns()), where=("features",)),
            Columns(self.table, (self.label,), where=("label",)),
            Columns(self.table, (SPLIT_COLUMN,), where=("table",)),
        )
