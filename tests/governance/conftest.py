"""Two sites with CSV tables beside a recipe that needs their owners' approval, each owner's key made and registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench.governance import signing

SITES = ("north", "south")
RECIPE = """\
name: approved_sites
seed: 2
datasets:
  north: {kind: file, path: north.csv}
  south: {kind: file, path: south.csv}
parties:
  north: {role: hospital, data: {dataset: north}}
  south: {role: hospital, data: {dataset: south}}
  aggregator: {role: aggregator}
steps:
  - {kind: split, params: {label: y, test_fraction: 0.3}}
  - {kind: local_train, params: {label: y, features: {numeric: [x0, x1]}, model: {family: logistic, l2: 0.01}}}
  - {kind: evaluate, params: {label: y, models: [local], resamples: 100}}
"""


MOCK_COLUMNS = "{x0: {type: float, range: [-3, 3]}, x1: {type: float, range: [-3, 3]}, y: {type: bool}}"


def mocked_recipe() -> str:
    """RECIPE with mock columns declared for both files, so an owner can review it on mock rows."""
    return RECIPE.replace("path: north.csv}", f"path: north.csv, mock: {MOCK_COLUMNS}}}").replace(
        "path: south.csv}", f"path: south.csv, mock: {MOCK_COLUMNS}}}"
    )


def write_sites(folder: Path, recipe: str = RECIPE, recipe_file: str = "recipe.yaml") -> Path:
    """Two sites' CSV files and `recipe` in `folder`, each owner's key made in owners/SITE/ and registered in approvals/."""
    rng = np.random.default_rng(4)
    folder.mkdir(parents=True, exist_ok=True)
    for site, rows in zip(SITES, (160, 120)):
        x = rng.normal(size=(rows, 2))
        y = rng.random(rows) < 1 / (1 + np.exp(-2 * x[:, 0]))
        pl.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": y}).write_csv(folder / f"{site}.csv")
        signing.new_key(folder / "owners" / site, folder / "approvals", site)
    (folder / recipe_file).write_text(recipe)
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two sites' CSV files beside the recipe, each owner's key made and registered."""
    return write_sites(tmp_path)
