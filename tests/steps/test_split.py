from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.data.splits import split_part, stratified_mask
from workbench.models.features import FeatureError, TableRef
from workbench.runner import RunResult


def test_each_class_is_held_out_in_proportion() -> None:
    y = np.r_[np.ones(50), np.zeros(950)]
    mask = stratified_mask(y, 0.3, np.random.default_rng(0))
    assert mask[y == 1].sum() == 15 and mask[y == 0].sum() == 285


def test_split_is_seeded() -> None:
    y = np.r_[np.ones(20), np.zeros(80)]
    first, again = (stratified_mask(y, 0.25, np.random.default_rng(5)) for _ in range(2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, stratified_mask(y, 0.25, np.random.default_rng(6)))


def test_split_step_marks_rows_at_each_site(flagship_run: RunResult) -> None:
    for site, summary in flagship_run.metrics["steps"]["split"].items():
        linked = flagship_run.stores[site].table("linked")
        deaths = linked["death_30d"]
        assert linked["is_test"].sum() == summary["test_rows"] == round(0.3 * deaths.sum()) + round(0.3 * (~deaths).sum())


def test_no_split_no_training() -> None:
    with pytest.raises(FeatureError, match="add a `split` step"):
        split_part(pl.DataFrame({"x": [1]}), TableRef("a", "t"), test=False)
