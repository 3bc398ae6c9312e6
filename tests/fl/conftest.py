"""Small synthetic sites on disk, as each site's client would read them, and a plan over them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy.special import expit

from workbench.fl.plan import FLPlan
from workbench.models.features import FeatureSpec
from workbench.models.model import ModelSpec

SITES = {"big": 600, "mid": 250, "small": 120}


@pytest.fixture(scope="session")
def site_configs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("sites")
    configs = []
    for index, (site, rows) in enumerate(SITES.items()):
        rng = np.random.default_rng(index)
        x = rng.normal(size=(rows, 2)) + index * 0.3
        y = rng.random(rows) < expit(1.5 * x[:, 0] - x[:, 1] - 0.5)
        frame = pl.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y, "is_test": rng.random(rows) < 0.3})
        path = folder / f"{site}.parquet"
        frame.write_parquet(path)
        configs.append({"party": site, "data-path": str(path)})
    return configs


@pytest.fixture
def make_plan() -> Callable[..., FLPlan]:
    def make(**changes: Any) -> FLPlan:
        base: dict[str, Any] = dict(
            server="aggregator",
            parties=list(SITES),
            features=FeatureSpec(numeric=["x1", "x2"]),
            label="y",
            model=ModelSpec(),
            rounds=5,
            local_epochs=1,
            learning_rate=0.5,
            batch_size=None,
            proximal_mu=0.0,
            fraction_train=1.0,
            min_available_clients=3,
            seed=1,
            node_timeout=2.0,
        )
        return FLPlan(**{**base, **changes})

    return make


def site_path(configs: list[dict[str, Any]], site: str) -> Path:
    return Path(next(c["data-path"] for c in configs if c["party"] == site))
