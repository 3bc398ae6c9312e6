"""The held-out split shared by every step that trains or evaluates at a site."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.models.features import FeatureError, TableRef

if TYPE_CHECKING:  # numpy and polars load where they are used: `workbench validate` reads SPLIT_COLUMN only
    import numpy as np
    import polars as pl

SPLIT_COLUMN = "is_test"


def stratified_mask(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """True for held-out rows: round(fraction * n) of each class, so rare outcomes appear in both parts."""
    import numpy as np

    mask = np.zeros(len(y), dtype=bool)
    for value in np.unique(y):
        members = np.flatnonzero(y == value)
        mask[rng.choice(members, size=round(fraction * len(members)), replace=False)] = True
    return mask


def split_part(frame: pl.DataFrame, where: TableRef, test: bool) -> pl.DataFrame:
    """The training or held-out rows; refusing to guess when no split was made keeps test rows out of training."""
    import polars as pl

    if SPLIT_COLUMN not in frame.columns:
        raise FeatureError(f"{where}: no {SPLIT_COLUMN!r} column; add a `split` step before training or evaluating")
    return frame.filter(pl.col(SPLIT_COLUMN) == test)
