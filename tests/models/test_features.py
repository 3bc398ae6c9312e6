from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.models.features import FeatureError, FeatureSpec, TableRef, design_matrix, label_vector

WHERE = TableRef("county_hospital", "ehr")
FRAME = pl.DataFrame(
    {
        "age": [70, 55, 81],
        "emergency": [True, False, True],
        "surgery_type": ["cardiac", "general", "neuro"],
        "death_30d": [True, False, False],
    }
)
SPEC = FeatureSpec(numeric=["age", "emergency"], categorical={"surgery_type": ["general", "cardiac", "neuro"]})


def test_encoding_is_numeric_booleans_and_one_hot_against_the_first_level() -> None:
    X = design_matrix(FRAME, SPEC, WHERE)
    assert SPEC.names() == ["age", "emergency", "surgery_type=cardiac", "surgery_type=neuro"]
    assert np.array_equal(X, [[70, 1, 1, 0], [55, 0, 0, 0], [81, 1, 0, 1]])
    assert np.array_equal(label_vector(FRAME, "death_30d", WHERE), [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("frame", "spec", "message"),
    [
        (FRAME.drop("age"), SPEC, "party 'county_hospital', table 'ehr': missing column\\(s\\) age"),
        (FRAME.with_columns(pl.lit("old").alias("age")), SPEC, "column 'age' must be numeric or Boolean, got String"),
        (FRAME.with_columns(pl.Series("age", [70, None, 81])), SPEC, "missing values in age \\(1 rows\\)"),
        (FRAME, FeatureSpec(categorical={"surgery_type": ["general", "cardiac"]}), "1 value\\(s\\) not among its declared categories .* \\(rows 3\\)"),
        (FRAME.with_columns(pl.Series("age", [70.0, float("nan"), float("inf")])), SPEC, "NaN or infinite values in age \\(2 rows\\)"),
        (FRAME, FeatureSpec(categorical={"surgery_type": ["general"]}), "needs at least two categories"),
    ],
)
def test_bad_tables_are_named(frame: pl.DataFrame, spec: FeatureSpec, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        design_matrix(frame, spec, WHERE)


def test_messages_quote_no_cell_of_the_table() -> None:
    """Issue 10: a headerless CSV's first record became the column names, and errors listed them; values were echoed too."""
    headerless = pl.DataFrame({"Jane Doe": ["John Roe"], "1961-04-02": ["1950-01-01"], "death": [2]})
    for call in (lambda: design_matrix(headerless, SPEC, WHERE), lambda: label_vector(headerless, "death", WHERE)):
        with pytest.raises(FeatureError) as caught:
            call()
        assert not any(value in str(caught.value) for value in ("Jane", "Roe", "1961", "1950"))
    with pytest.raises(FeatureError, match="1 rows hold other values \\(rows 1\\)"):
        label_vector(headerless, "death", WHERE)


def test_declared_fills_stand_in_for_missing_values_and_must_name_numeric_columns() -> None:
    frame = FRAME.with_columns(pl.Series("age", [70, None, 81]))
    X = design_matrix(frame, SPEC.model_copy(update={"fill_missing": {"age": 65.0}}), WHERE)
    assert X[:, 0].tolist() == [70.0, 65.0, 81.0]
    with pytest.raises(ValueError, match="fill_missing names surgery_type, which are not among the numeric columns"):
        FeatureSpec(numeric=["age"], categorical={"surgery_type": ["general", "cardiac"]}, fill_missing={"surgery_type": 0})


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (FRAME.drop("death_30d"), "label column 'death_30d' is missing"),
        (FRAME.with_columns(pl.Series("death_30d", [True, None, False])), "has 1 missing values"),
        (FRAME.with_columns(pl.Series("death_30d", [0, 1, 2])), "must be Boolean or 0/1"),
    ],
)
def test_bad_labels_are_named(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        label_vector(frame, "death_30d", WHERE)


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"age": (18, 100)}, "bounds must cover every numeric column or none .*add bounds for smoker"),
        ({"age": (18, 100), "smoker": (0, 1), "height": (1, 2)}, "bounds names height, which are not among the numeric columns"),
        ({"age": (100, 18), "smoker": (0, 1)}, r"bounds need low < high; got age \[100, 18\]"),
    ],
)
def test_bounds_cover_every_numeric_column_each_with_low_below_high(bounds: dict[str, tuple[float, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureSpec(numeric=["age", "smoker"], bounds=bounds)
    assert FeatureSpec(numeric=["age", "smoker"], bounds={"age": (18, 100), "smoker": (0, 1)}).public_scaling
