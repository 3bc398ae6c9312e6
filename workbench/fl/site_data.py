"""A site's own training and held-out rows, as a ClientApp loads them where it runs.

Each site's table reaches its client through a file only that site's node
reads (`data-path` in its node config): in a real deployment that is the
hospital's own extract; on loopback, a private temporary file per party.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from workbench.data.splits import evaluation_part, split_part
from workbench.models.features import FeatureSpec, TableRef, design_matrix, label_vector


@dataclass(frozen=True)
class SiteData:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    """The rows each round is scored on: the validation part where the split drew one, so tuning rounds on the
    per-round curves never reads the test rows; else the test part."""


@lru_cache(maxsize=16)
def load_site(path: str, party: str, features_json: str, label: str) -> SiteData:
    """Read and encode once per process: long-running clients then train without touching the disk again."""
    frame = pl.read_parquet(Path(path))
    features = FeatureSpec.model_validate_json(features_json)
    where = TableRef(party, Path(path).stem)
    train, test = split_part(frame, where, test=False), evaluation_part(frame, where)  # "test": what each round is scored on
    return SiteData(
        design_matrix(train, features, where),
        label_vector(train, label, where),
        design_matrix(test, features, where),
        label_vector(test, label, where),
    )
