"""Parameters every step that scores trained models at each site shares (evaluate, audit), so they read alike."""

from __future__ import annotations

from pydantic import Field

from workbench.contracts import Columns
from workbench.data.splits import SPLIT_COLUMN
from workbench.steps.base import StepParams


class ScoringParams(StepParams):
    table: str = Field("data", description="Table holding features, label and the split at each site.")
    label: str = Field(description="Binary outcome column.")
    models: list[str] = Field(min_length=1, description="Models to score, by name.")

    def reads(self) -> tuple[Columns, ...]:
        """What a scoring step reads at each hospital besides the models' own features: the label and the split's column."""
        return (Columns(self.table, (self.label,), where=("label",)), Columns(self.table, (SPLIT_COLUMN,)))
