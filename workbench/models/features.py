"""Turning a party's table into a numeric design matrix, the same way at every site.

Categories are declared in the recipe, not discovered from data: discovering
them would need pooled data (or leak which rare categories a site has), and
every site must produce the same columns in the same order for a shared model.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # numpy and polars load where they are used: `workbench validate` reads FeatureSpec only
    import numpy as np
    import polars as pl


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

    bounds: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Numeric column -> [low, high]: public bounds (a clinical range, not the data's minimum and maximum). Given for "
        "every numeric column, models scale by them (low to -1, high to 1) instead of standardizing by the rows' moments, so no "
        "site's feature sums leave it and the scaling reads no row (differential privacy then covers it). Values outside stay as they are.",
    )

    @model_validator(mode="after")
    def _fills_numeric_columns(self) -> FeatureSpec:
        stray = sorted(set(self.fill_missing) - set(self.numeric))
        if stray:
            raise ValueError(f"fill_missing names {', '.join(stray)}, which are not among the numeric columns {self.numeric}")
        return self

    @model_validator(mode="after")
    def _bounds_every_numeric_column(self) -> FeatureSpec:
        if not self.bounds:
            return self
        stray = sorted(set(self.bounds) - set(self.numeric))
        if stray:
            raise ValueError(f"bounds names {', '.join(stray)}, which are not among the numeric columns {self.numeric}")
        missing = [column for column in self.numeric if column not in self.bounds]
        if missing:
            raise ValueError(
                f"bounds must cover every numeric column or none (a scaling half public, half from the rows' moments would still "
                f"send the moments); add bounds for {', '.join(missing)}"
            )
        empty = [f"{column} [{low:g}, {high:g}]" for column, (low, high) in self.bounds.items() if not low < high]
        if empty:
            raise ValueError(f"bounds need low < high; got {', '.join(empty)}")
        return self

    @property
    def public_scaling(self) -> bool:
        """Whether models scale by the declared bounds, so no statistic of the rows is needed (or sent) to standardize."""
        return bool(self.bounds)

    def names(self) -> list[str]:
        """Model input names in matrix order."""
        encoded = [f"{column}={level}" for column, levels in self.categorical.items() for level in levels[1:]]
        return [*self.numeric, *encoded]

    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class FeatureError(WorkbenchError, ValueError):
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
    import numpy as np
    import polars as pl

    missing = [column for column in spec.columns() if column not in frame.columns]
    if missing:
        raise FeatureError(f"{where}: missing column(s) {', '.join(missing)}; {_closest(missing, frame.columns)}")
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
            rows = _rows_where(frame, ~pl.col(column).cast(pl.Utf8).is_in(levels) & pl.col(column).is_not_null())
            raise FeatureError(
                f"{where}: column {column!r} has {unknown.len()} value(s) not among its declared categories {levels} "
                f"(rows {rows}); declare them or recode the column"
            )
        parts.extend((pl.col(column).cast(pl.Utf8) == level).cast(pl.Float64).alias(f"{column}={level}") for level in levels[1:])
    encoded = frame.select(parts)
    null_counts = {c: n for c, n in zip(encoded.columns, encoded.null_count().row(0)) if n}
    if null_counts:
        detail = ", ".join(f"{column} ({count} rows)" for column, count in null_counts.items())
        raise FeatureError(f"{where}: missing values in {detail}; declare a value in features.fill_missing, or impute or drop them before this step")
    matrix = encoded.to_numpy().astype(np.float64, copy=False)
    bad = ~np.isfinite(matrix)
    if bad.any():
        detail = ", ".join(f"{encoded.columns[j]} ({int(bad[:, j].sum())} rows)" for j in np.flatnonzero(bad.any(axis=0)))
        raise FeatureError(f"{where}: NaN or infinite values in {detail}; clean or impute them before this step")
    return matrix


def label_vector(frame: pl.DataFrame, label: str, where: TableRef) -> np.ndarray:
    """The binary outcome as 0/1 floats; a label that is not binary is an error, not a guess."""
    import polars as pl

    if label not in frame.columns:
        raise FeatureError(f"{where}: label column {label!r} is missing; {_closest([label], frame.columns)}")
    series = frame.get_column(label)
    if series.null_count():
        raise FeatureError(f"{where}: label column {label!r} has {series.null_count()} missing values")
    if not (series.dtype == pl.Boolean or series.dtype.is_numeric()):
        raise FeatureError(f"{where}: label column {label!r} must be Boolean or 0/1, got a column of type {series.dtype}")
    outside = series.cast(pl.Float64).is_in([0.0, 1.0]).not_()
    if outside.any():
        rows = _rows_where(frame, outside)
        raise FeatureError(f"{where}: label column {label!r} must be Boolean or 0/1; {int(outside.sum())} rows hold other values (rows {rows})")
    return series.cast(pl.Float64).to_numpy()


def _closest(missing: list[str], columns: list[str]) -> str:
    """A hint naming close column names only: listing every header would quote a headerless file's first record."""
    close = sorted({match for name in missing for match in get_close_matches(name, columns, n=2, cutoff=0.6)})
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"{hint}the table has {len(columns)} columns; check its header and the recipe's column names"


def _rows_where(frame: pl.DataFrame, condition: pl.Expr | pl.Series) -> str:
    """The first row numbers (1-based) where `condition` holds: where to look, without quoting what is there."""
    import numpy as np
    import polars as pl

    mask = frame.select(condition).to_series() if isinstance(condition, pl.Expr) else condition
    rows = (np.flatnonzero(mask.fill_null(False).to_numpy()) + 1).tolist()
    return ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
