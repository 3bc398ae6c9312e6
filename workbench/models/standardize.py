"""Feature standardization that sites can agree on without pooling rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads where it is used, not when `workbench validate` loads the FL steps
    import numpy as np


@dataclass(frozen=True)
class Standardizer:
    """Per-feature centering and scaling; constant features keep scale 1 instead of dividing by zero."""

    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_data(cls, X: np.ndarray) -> Standardizer:
        return cls.from_moments(*moments(X))

    @classmethod
    def from_moments(cls, count: float, sums: np.ndarray, sums_of_squares: np.ndarray) -> Standardizer:
        """From counts, sums and sums of squares: what federated statistics can add up across sites."""
        import numpy as np

        if count <= 1:
            raise ValueError(f"standardizing needs at least two rows, got {count}")
        mean = sums / count
        variance = np.maximum(sums_of_squares / count - mean**2, 0.0)
        std = np.sqrt(variance)
        return cls(center=mean, scale=np.where(std > 1e-12, std, 1.0))

    def apply(self, X: np.ndarray) -> np.ndarray:
        standardized: np.ndarray = (X - self.center) / self.scale
        return standardized


def moments(X: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Count, column sums and column sums of squares: additive, so sites' moments sum to the pooled ones."""
    return float(len(X)), X.sum(axis=0), (X**2).sum(axis=0)
