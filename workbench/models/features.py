"""Turning a party's table into a numeric design matrix, the same way at every site.

Categories are declared in the recipe, not discovered from data: discovering
them would need pooled data (or leak which rare categories a site has), and
every site must produce the same columns in the same order for a shared model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeatureSpec(BaseModel):
    """Which columns feed a model and how they are encoded."""

    model_config = ConfigDict(extra="forbid")

    numeric: list[str] = Field(
        default_factory=list,
        description="Numeric or Boolean columns used as they are (Booleans become 0/1).",
    )
    categorical: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Column -> its categories; one-hot encoded, first category is the reference level.",
    )
    fill_missing: dict[str, float] = Field(
        default_factory=dict,
        description="Numeric column -> the value that stands in where it is missing (e.g. a linked payload a record did not get). "
        "Declared, not learned from data, so every site fills alike without pooling anything; pair it with an indicator column.",
    )

    @model_validator(mode="after")
    def _fills_numeric_columns(self) -> FeatureSpec:
        stray = sorted(set(self.fill_missing) - set(self.numeric))
        if stray:
            raise ValueError(f"fill_missing names {', '.join(stray)}, which are not among the numeric columns {self.numeric}")
        return self

    def names(self) -> list[str]:
        """Model input names in matrix order."""
        encoded = [f"{column}={level}" for column, levels in self.categorical.items() for level in levels[1:]]
        return [*self.numeric, *encoded]

    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class FeatureError(ValueError):
    """A table does not fit the feature specification; the message names party, table and column."""


@dataclass(frozen=True)
class TableRef:
    """Where a frame came from, so errors can say which party's which table is at fault."""

    party: str
    table: str

    def __str__(self) -> str:
        return f"party {self.party!r}, table {self.table!r}"


def design_matrix(frame: pl.DataFrame, spec: FeatureSpec, where: TableRef) -> np.ndarray:
    """Encode `frame` as float64 rows x spec.names() columns, or say exactly what does not fit."""
    missing = [column for column in spec.columns() if column not in frame.columns]
    if missing:
        raise FeatureError(
            f"{where}: missing column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}"
        )
    parts: list[pl.Expr] = []
    for column in spec.numeric:
        dtype = frame.schema[column]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise FeatureError(f"{where}: column {column!r} must be numeric or Boolean, got {dtype}")
        value = pl.col(column).cast(pl.Float64)
        fill = spec.fill_missing.get(column)
        parts.append(value if fill is None else value.fill_null(fill))
    for column, levels in spec.categorical.items():
        if len(levels) < 2:
            raise FeatureError(f"{where}: categorical column {column!r} needs at least two categories, got {levels}")
        values = frame.get_column(column).drop_nulls().cast(pl.Utf8).unique()
        unknown = values.filter(~values.is_in(levels))
        if unknown.len():
            raise FeatureError(
                f"{where}: column {column!r} has values {sorted(map(str, unknown.to_list()))[:5]} "
                f"that are not among its declared categories {levels}"
            )
        parts.extend(
            (pl.col(column).cast(pl.Utf8) == level).cast(pl.Float64).alias(f"{column}={level}") for level in levels[1:]
        )
    encoded = frame.select(parts)
    null_counts = {c: n for c, n in zip(encoded.columns, encoded.null_count().row(0)) if n}
    if null_counts:
        detail = ", ".join(f"{column} ({count} rows)" for column, count in null_counts.items())
        raise FeatureError(f"{where}: missing values in {detail}; declare a value in features.fill_missing, or impute or drop them before this step")
    return encoded.to_numpy().astype(np.float64, copy=False)


def label_vector(frame: pl.DataFrame, label: str, where: TableRef) -> np.ndarray:
    """The binary outcome as 0/1 floats; a label that is not binary is an error, not a guess."""
    if label not in frame.columns:
        raise FeatureError(f"{where}: label column {label!r} is missing; it has {', '.join(frame.columns)}")
    series = frame.get_column(label)
    if series.null_count():
        raise FeatureError(f"{where}: label column {label!r} has {series.null_count()} missing values")
    values = set(series.unique().to_list())
    if not values <= {0, 1}:  # True == 1 and False == 0
        raise FeatureError(f"{where}: label column {label!r} must be Boolean or 0/1, got values {sorted(map(str, values))[:5]}")
    return series.cast(pl.Float64).to_numpy()
