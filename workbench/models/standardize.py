"""Feature standardization that sites can agree on without pooling rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads where it is used, not when `workbench validate` loads the FL steps
    import numpy as np

    from workbench.models.features import FeatureSpec


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

    @classmethod
    def from_bounds(cls, features: FeatureSpec) -> Standardizer:
        """Scaling by the recipe's public bounds, low to -1 and high to 1 (centred, as gradient descent with an intercept
        converges faster on); one-hot columns (0 or 1 already) as they are. Reads no row."""
        import numpy as np

        encoded = len(features.names()) - len(features.numeric)
        low = np.array([features.bounds[column][0] for column in features.numeric] + [-1.0] * encoded)
        high = np.array([features.bounds[column][1] for column in features.numeric] + [1.0] * encoded)
        return cls(center=(low + high) / 2, scale=(high - low) / 2)

    @classmethod
    def for_features(cls, features: FeatureSpec, X: np.ndarray) -> Standardizer:
        """The scaling a model on these features uses: the public bounds where the recipe declares them, else the rows' moments."""
        return cls.from_bounds(features) if features.public_scaling else cls.from_data(X)

    def moments_for(self, count: float) -> tuple[float, np.ndarray, np.ndarray]:
        """Moments of `count` rows that this standardizer would be fitted from (centre as mean, scale as standard deviation).

        What a site sends for federated standardization when the scaling is public: every site's equal the same centre and
        scale, so the pooled ones come out as the public scaling, every aggregation kind runs unchanged, and the only
        figure of the rows in them is the count, which each update carries anyway.
        """
        return count, count * self.center, count * (self.scale**2 + self.center**2)

    def apply(self, X: np.ndarray) -> np.ndarray:
        standardized: np.ndarray = (X - self.center) / self.scale
        return standardized


def moments(X: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Count, column sums and column sums of squares: additive, so sites' moments sum to the pooled ones."""
    return float(len(X)), X.sum(axis=0), (X**2).sum(axis=0)
