from __future__ import annotations

import numpy as np
import pytest

from workbench.models.features import FeatureSpec
from workbench.models.standardize import Standardizer, moments


def test_sites_moments_add_up_to_the_pooled_standardizer() -> None:
    X = np.random.default_rng(1).normal(3.0, 2.0, size=(500, 4))
    X[:, 2] = 7.0  # a constant column keeps scale 1
    direct = Standardizer.from_data(X)
    sites = [moments(X[:100]), moments(X[100:350]), moments(X[350:])]
    merged = Standardizer.from_moments(*(sum(parts) for parts in zip(*sites)))
    assert np.allclose(direct.center, merged.center) and np.allclose(direct.scale, merged.scale)
    assert direct.scale[2] == 1.0 and np.allclose(direct.apply(X).mean(0), 0.0)


def test_one_row_is_not_enough() -> None:
    with pytest.raises(ValueError, match="at least two rows"):
        Standardizer.from_data(np.ones((1, 3)))


BOUNDED = FeatureSpec(numeric=["age", "smoker"], categorical={"ward": ["a", "b", "c"]}, bounds={"age": (18, 100), "smoker": (0, 1)})


def test_public_bounds_scale_numeric_columns_to_their_range_and_leave_one_hot_columns_alone() -> None:
    scaler = Standardizer.from_bounds(BOUNDED)
    assert scaler.center.tolist() == [59.0, 0.5, 0.0, 0.0] and scaler.scale.tolist() == [41.0, 0.5, 1.0, 1.0]
    X = np.array([[18.0, 1.0, 0.0, 1.0], [100.0, 0.0, 1.0, 0.0], [59.0, 0.0, 0.0, 0.0]])
    assert np.allclose(scaler.apply(X), [[-1.0, 1.0, 0.0, 1.0], [1.0, -1.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0]])
    public = Standardizer.for_features(BOUNDED, X * 1000)
    assert np.array_equal(public.center, scaler.center) and np.array_equal(public.scale, scaler.scale), "the rows do not enter it"
    assert Standardizer.for_features(BOUNDED.model_copy(update={"bounds": {}}), X).center[0] == pytest.approx(59.0)


def test_the_moments_sites_send_under_public_scaling_pool_to_that_scaling_and_hold_only_the_count() -> None:
    scaler = Standardizer.from_bounds(BOUNDED)
    sites = [scaler.moments_for(count) for count in (3500.0, 420.0, 280.0)]
    pooled = Standardizer.from_moments(*(sum(parts) for parts in zip(*sites)))
    assert np.allclose(pooled.center, scaler.center, atol=1e-9) and np.allclose(pooled.scale, scaler.scale, atol=1e-9)
    count, sums, squares = sites[1]
    assert count == 420.0 and np.array_equal(sums, 420.0 * scaler.center), "a function of the count and the recipe alone"
