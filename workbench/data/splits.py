"""The held-out split shared by every step that trains or evaluates at a site."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.models.features import FeatureError, TableRef

if TYPE_CHECKING:  # numpy and polars load where they are used: `workbench validate` reads SPLIT_COLUMN only
    import numpy as np
    import polars as pl

SPLIT_COLUMN = "is_test"
VALIDATION_COLUMN = "is_validation"
"""Rows set aside from training for choosing settings (rounds, penalty, threshold): `split`'s validation_fraction adds it."""


def stratified_mask(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """True for held-out rows: round(fraction * n) of each class, so rare outcomes appear in both parts."""
    import numpy as np

    mask = np.zeros(len(y), dtype=bool)
    for value in np.unique(y):
        members = np.flatnonzero(y == value)
        mask[rng.choice(members, size=round(fraction * len(members)), replace=False)] = True
    return mask


def stratified_folds(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's fold in 0..folds-1, every class dealt out evenly: fold i of k is a held-out part of k-fold
    cross-validation, and the k parts cover every row once."""
    import numpy as np

    fold = np.empty(len(y), dtype=np.int64)
    for value in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == value))
        fold[members] = np.arange(len(members)) * folds // max(len(members), 1)
    return fold


def split_part(frame: pl.DataFrame, where: TableRef, test: bool) -> pl.DataFrame:
    """The training or held-out rows; refusing to guess when no split was made keeps test rows out of training.

    Validation rows (`VALIDATION_COLUMN`) are in neither part: no step trains on them, and they are scored only when a
    step asks for them by name (`validation_part`), so choosing settings on them never touches the test rows.
    """
    import polars as pl

    if SPLIT_COLUMN not in frame.columns:
        raise FeatureError(f"{where}: no {SPLIT_COLUMN!r} column; add a `split` step before training or evaluating")
    if test:
        return frame.filter(pl.col(SPLIT_COLUMN))
    outside = pl.col(VALIDATION_COLUMN) if VALIDATION_COLUMN in frame.columns else pl.lit(False)
    return frame.filter(~pl.col(SPLIT_COLUMN) & ~outside)


def validation_part(frame: pl.DataFrame, where: TableRef) -> pl.DataFrame:
    """The rows set aside for choosing settings; refused where the split drew none."""
    import polars as pl

    if VALIDATION_COLUMN not in frame.columns:
        raise FeatureError(f"{where}: no {VALIDATION_COLUMN!r} column; give the `split` step a validation_fraction")
    return frame.filter(pl.col(VALIDATION_COLUMN) & ~pl.col(SPLIT_COLUMN))


def evaluation_part(frame: pl.DataFrame, where: TableRef) -> pl.DataFrame:
    """What a site scores while training runs (the per-round curves a researcher tunes rounds on): the validation rows
    where the split drew some, else the test rows."""
    return validation_part(frame, where) if VALIDATION_COLUMN in frame.columns else split_part(frame, where, test=True)
