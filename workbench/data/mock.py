"""Mock tables: the schema of a party's data with rows that owe nothing to its values.

A researcher develops a recipe, and an owner reviews it, on mock rows (`workbench run --mock`, `workbench approve`).
A mock column is drawn from what is declared about it (its type, a range, its levels), never from the real table, so a
mock can be produced, shared and run anywhere without a real row being read. The generator's cohort is synthetic
already: its mock is the generator itself at another seed and small sizes (`SyntheticCohortSource.load_mock`).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

MOCK_ROWS = 200
"""Rows of a mock part unless a source says otherwise: enough for every step to run, few enough to run in seconds."""


class MockColumn(BaseModel):
    """What is declared about one column: enough to draw plausible values of the right type."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["id", "int", "float", "bool", "text", "category"] = Field(description="id: unique text identifiers; category: one of `levels`.")
    range: tuple[float, float] | None = Field(None, description="[low, high] for int and float columns.")
    levels: list[str] | None = Field(None, min_length=1, description="The values of a category column.")
    missing: float = Field(0.0, ge=0, lt=1, description="Share of missing values.")

    @model_validator(mode="after")
    def _declared_enough(self) -> MockColumn:
        if self.type in ("int", "float") and self.range is None:
            raise ValueError(f"a mock {self.type} column needs its range: [low, high]")
        if self.range is not None and not self.range[0] <= self.range[1]:
            raise ValueError(f"range [{self.range[0]}, {self.range[1]}] has its low end above its high end")
        if self.type == "category" and not self.levels:
            raise ValueError("a mock category column needs its levels")
        return self


def mock_seed(seed: int, part: str) -> int:
    """The seed of one part's mock: never the recipe's own, so a mock never repeats a seeded draw of real structure."""
    return (seed * 1_000_003 + zlib.crc32(f"mock/{part}".encode())) % 2**63


def mock_frame(columns: dict[str, MockColumn], rows: int, seed: int) -> pl.DataFrame:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    return pl.DataFrame({name: _draw(column, rows, rng, name) for name, column in columns.items()})


def _draw(column: MockColumn, rows: int, rng: np.random.Generator, name: str) -> pl.Series:
    import polars as pl

    if column.type == "id":
        values: list[object] = [f"mock-{index:06d}" for index in rng.permutation(rows)]
    elif column.type == "int":
        low, high = column.range or (0, 0)
        values = rng.integers(int(low), int(high), endpoint=True, size=rows).tolist()
    elif column.type == "float":
        low, high = column.range or (0.0, 0.0)
        values = rng.uniform(low, high, size=rows).tolist()
    elif column.type == "bool":
        values = (rng.random(rows) < 0.5).tolist()
    elif column.type == "category":
        values = rng.choice(column.levels or [""], size=rows).tolist()
    else:
        values = [f"mock text {index}" for index in rng.integers(0, 10 * rows, size=rows)]
    missing = rng.random(rows) < column.missing
    return pl.Series(name, [None if gone else value for value, gone in zip(values, missing)])
