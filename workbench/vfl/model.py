"""What a hospital keeps of a vertical model, so that `evaluate` scores it as it scores any other model.

A patient the vendor also holds needs the vendor's block to be scored, and that block never leaves the vendor. So
`vfl_train` scores the hospital's held-out patients once, at the end of training (`protocol._held_out_logits`), and
the hospital keeps their joint logits by its own record id, next to the EHR block, which alone scores a patient the
vendor does not hold (whose vitals part is 0, as in training). Keyed by record id, not by position, the scores follow
the patients into any table of the hospital's (the payload variant's linked table, say) and a training row is
refused by name instead of silently scored on the EHR block alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.models.features import FeatureError, FeatureSpec, TableRef, design_matrix

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from workbench.models.standardize import Standardizer


@dataclass(frozen=True)
class VerticalModel:
    """A vertical logistic model as one hospital holds it."""

    step: str
    features: FeatureSpec
    standardizer: Standardizer
    ehr_block: np.ndarray
    """The EHR weights on standardized columns, the intercept last: the same at every hospital."""
    id_column: str
    held_out_logits: Mapping[str, float]
    """Record id -> joint logit, for each held-out patient the vendor also holds."""
    aligned_ids: frozenset[str]
    """Record ids of every patient the vendor also holds: those outside `held_out_logits` were training rows."""

    def predict_rows(self, frame: pl.DataFrame, where: TableRef) -> np.ndarray:
        import numpy as np
        from scipy.special import expit

        if self.id_column not in frame.columns:
            raise FeatureError(f"{where}: no {self.id_column!r} column, by which {self.step}'s model knows the patients it scored")
        ids = [str(value) for value in frame.get_column(self.id_column).to_list()]
        unscored = [i for i in ids if i in self.aligned_ids and i not in self.held_out_logits]
        if unscored:
            raise FeatureError(
                f"{where}: {len(unscored)} rows (first {self.id_column} {unscored[0]!r}) were training rows of {self.step}, which scored only "
                "its held-out patients the vendor also holds; score held-out rows of a table split as vfl_train's was"
            )
        ehr = self.standardizer.apply(design_matrix(frame, self.features, where)) @ self.ehr_block[:-1] + self.ehr_block[-1]
        logits = np.array([self.held_out_logits.get(i, e) for i, e in zip(ids, ehr, strict=True)])
        probabilities: np.ndarray = expit(logits)
        return probabilities
