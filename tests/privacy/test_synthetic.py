"""The synthetic-data generator's phases against known answers: noise of the declared sigma, selection that finds a
known tree, and without noise rows whose marginals are the true ones within sampling error."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from workbench.privacy import synthetic as syn
from workbench.privacy import synthetic_quality as quality


def test_distributed_discrete_gaussian_noise_sums_to_the_declared_sigma() -> None:
    """The sites' shares (each sigma / sqrt(3)) add up, in the masked total, to Gaussian noise of sigma."""
    sigma, cells = 6.0, 60_000
    true = np.random.default_rng(0).integers(0, 50, cells)
    total = sum(syn.noised(true // 3 + (site < true % 3), sigma, 3) for site in range(3))
    error = total - true
    wide = np.arange(-200, 201)
    pmf = np.exp(-(wide**2) / (2 * sigma**2))
    pmf /= pmf.sum()  # the discrete Gaussian of sigma, against which the total's noise is tested, tails pooled beyond ±3 sigma
    expected = np.r_[pmf[wide <= -18].sum(), pmf[(wide > -18) & (wide < 18)], pmf[wide >= 18].sum()] * cells
    observed = np.bincount(np.clip(error, -18, 18) + 18, minlength=37)
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    assert error.std() / sigma == pytest.approx(1.0, abs=0.02) and abs(error.mean()) < 0.1
    assert error.dtype == np.int64


def test_the_discrete_gaussian_keeps_its_variance_at_small_sigma() -> None:
    draws = syn.discrete_gaussian(0.8, 200_000, np.random.default_rng(1))
    exact = sum(k * k * math.exp(-k * k / (2 * 0.64)) for k in range(-20, 21)) / sum(math.exp(-k * k / (2 * 0.64)) for k in range(-20, 21))
    assert draws.var() == pytest.approx(exact, rel=0.02)


def test_the_budget_converts_both_ways_and_sizes_the_noise() -> None:
    rho = syn.rho_for(4.0, 1e-5)
    assert syn.epsilon_for(rho, 1e-5) == pytest.approx(4.0)
    sigma = syn.noise_sigma(rho / 2, 55)
    assert 55 / (2 * sigma**2) == pytest.approx(rho / 2)


def chain_codes(rows: int, rng: np.random.Generator) -> np.ndarray:
    """label -> every column; column 1 -> 2 -> 3 beyond the label: the tree the selection must find."""
    y = (rng.random(rows) < 0.3).astype(int)
    a = (rng.random(rows) < 0.2 + 0.5 * y).astype(int)
    b = np.where(rng.random(rows) < 0.85, a, 1 - a) * 2 + (rng.random(rows) < 0.5)  # 4 levels, mostly copying a
    c = np.where(rng.random(rows) < 0.8, b // 2, rng.integers(0, 2, rows))
    return np.column_stack([y, a, b, c])


def test_selection_finds_the_tree_the_data_came_from() -> None:
    codes, sizes = chain_codes(20_000, np.random.default_rng(2)), [2, 2, 4, 2]
    pairs = syn.all_pairs([1, 2, 3])
    tables = syn.split_tables(syn.triple_counts(codes, sizes, 0, pairs), sizes, 0, pairs)
    tree = syn.maximum_spanning_tree({pair: syn.conditional_mutual_information(table) for pair, table in tables.items()})
    assert sorted(tree) == [(1, 2), (2, 3)]


def test_without_noise_the_synthetic_marginals_match_the_true_ones_within_sampling_error() -> None:
    rng = np.random.default_rng(3)
    codes, sizes = chain_codes(20_000, rng), [2, 2, 4, 2]
    tree = [(1, 2), (2, 3)]
    model = syn.TreeModel.fit(sizes, 0, syn.split_tables(syn.triple_counts(codes, sizes, 0, tree), sizes, 0, tree))
    sampled = model.sample(20_000, rng)
    for i, k in enumerate(sizes):  # each 1-way share within 4 standard errors of two independent samples
        p, q = np.bincount(codes[:, i], minlength=k) / len(codes), np.bincount(sampled[:, i], minlength=k) / len(sampled)
        assert np.all(np.abs(p - q) <= 4 * np.sqrt(2 * p * (1 - p) / len(codes)) + 1e-12), (i, p, q)
    for i, j in tree:  # and the (label, i, j) tables the model was fitted to
        real, synthetic = (syn.triple_counts(c, sizes, 0, [(i, j)]) for c in (codes, sampled))
        assert quality.total_variation(real, synthetic) < 0.02


def test_columns_are_binned_as_declared_and_bad_values_are_named() -> None:
    age = syn.ColumnBins(edges=[18, 40, 60, 96])
    assert age.encode(pl.Series("age", [18.0, 39.9, 40.0, 95.0, 120.0]), "here").tolist() == [0, 0, 1, 2, 2]
    decoded = age.decode(np.array([0, 2]), "age", np.random.default_rng(0)).to_numpy()
    assert 18 <= decoded[0] < 40 and 60 <= decoded[1] < 96
    flag = syn.ColumnBins(levels=[False, True])
    assert flag.encode(pl.Series("flag", [True, False]), "here").tolist() == [1, 0]
    with pytest.raises(syn.SyntheticDataError, match="party 'x'.*column 'kind' holds value\\(s\\) 'z' not among its levels"):
        syn.ColumnBins(levels=["a", "b"]).encode(pl.Series("kind", ["a", "z"]), "party 'x'")
    with pytest.raises(syn.SyntheticDataError, match="column 'age' has 1 missing values"):
        age.encode(pl.Series("age", [20, None]), "here")
    with pytest.raises(syn.SyntheticDataError, match="column 'flag' is Int64, but its levels"):
        flag.encode(pl.Series("flag", [0, 1]), "here")
    with pytest.raises(ValueError, match="either edges"):
        syn.ColumnBins()


def test_closest_records_tell_a_copy_from_a_fresh_draw() -> None:
    rng = np.random.default_rng(4)
    train, holdout, fresh = rng.random((400, 3)), rng.random((400, 3)), rng.random((400, 3))
    copied = quality.closest_records(train + 1e-6, train, holdout, rng)
    honest = quality.closest_records(fresh, train, holdout, rng)
    assert copied["dcr_share_closer_to_train"] > 0.99 and copied["nndr_train_median"] < 0.01
    assert 0.4 < honest["dcr_share_closer_to_train"] < 0.6


def test_the_correlation_gap_skips_columns_constant_on_either_side() -> None:
    rng = np.random.default_rng(5)
    real = np.column_stack([rng.random(100), np.zeros(100), rng.random(100)])
    synthetic = np.column_stack([real[:, 0], rng.random(100) < 0.1, real[:, 2]])
    assert quality.correlation_gap(real, synthetic) == pytest.approx(0.0, abs=1e-12)
    assert quality.correlation_gap(real, np.column_stack([real[:, 0], real[:, 1], -real[:, 0]])) > 0.9


def test_a_declared_missing_bin_carries_missing_values_through() -> None:
    vitals = syn.ColumnBins(edges=[40, 70, 130], missing=True)
    codes = vitals.encode(pl.Series("resting_hr", [55.0, None, 90.0]), "here")
    assert codes.tolist() == [0, 2, 1] and vitals.size == 3
    back = vitals.decode(codes, "resting_hr", np.random.default_rng(0))
    assert back.null_count() == 1 and back[1] is None and 40 <= back[0] < 70
    flags = syn.ColumnBins(levels=[False, True], missing=True)
    assert flags.encode(pl.Series("matched", [True, None]), "here").tolist() == [1, 2]
    assert flags.decode(np.array([2, 0]), "matched", np.random.default_rng(0)).to_list() == [None, False]
    points = quality.embed({"resting_hr": back.cast(float).to_numpy()}, [vitals])
    assert points.shape == (3, 2) and np.isfinite(points).all() and points[1].tolist() == [0.0, 1.0]
