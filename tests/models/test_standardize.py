from __future__ import annotations

import numpy as np
import pytest

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
