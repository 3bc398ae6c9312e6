"""Table rows as fixed-width bytes, for payloads that travel encrypted one record at a time.

Labeled PSI seals each of the provider's records separately; if records had
different lengths, ciphertext sizes would say something about the record. So
every row becomes the same number of bytes: per column one validity byte and
eight value bytes (float64, or int64 for integers and Booleans). The schema
(names and dtypes) travels once, in the clear: it is part of the agreement,
not of any record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.data.normalize import LinkageInputError

if TYPE_CHECKING:  # numpy and polars load where they are used, not when `workbench validate` loads psi_link
    import numpy as np
    import polars as pl

_ENCODINGS = {"Float64": "<f8", "Float32": "<f8", "Boolean": "<i8", **{f"{s}{b}": "<i8" for s in ("Int", "UInt") for b in (8, 16, 32)}, "Int64": "<i8"}
"""Dtypes that fit eight bytes exactly (UInt64 may not, so it is refused)."""


@dataclass(frozen=True)
class PayloadCodec:
    """Encodes the named columns of a frame as equal-length rows and decodes them back with their dtypes."""

    columns: tuple[tuple[str, str], ...]
    """(column, polars dtype name) in payload order."""

    @classmethod
    def for_frame(cls, frame: pl.DataFrame, columns: Sequence[str], where: str) -> PayloadCodec:
        """The codec for `columns` of `frame`, or an error naming the column that is missing or cannot be sent."""
        spec = []
        for column in columns:
            if column not in frame.columns:
                raise LinkageInputError(f"{where}: payload column {column!r} is not in the table; it has {', '.join(frame.columns)}")
            dtype = str(frame.schema[column])
            if dtype not in _ENCODINGS:
                raise LinkageInputError(
                    f"{where}: payload column {column!r} is {dtype}; payloads carry numeric and Boolean columns only "
                    "(fixed-width records keep ciphertext sizes from revealing anything)"
                )
            spec.append((column, dtype))
        return cls(tuple(spec))

    @classmethod
    def from_schema(cls, schema: bytes) -> PayloadCodec:
        columns = json.loads(schema.decode("utf-8"))
        return cls(tuple((str(name), str(dtype)) for name, dtype in columns))

    def schema(self) -> bytes:
        return json.dumps([list(pair) for pair in self.columns]).encode("utf-8")

    @property
    def _record(self) -> np.dtype:
        import numpy as np

        return np.dtype([field for name, dtype in self.columns for field in ((f"{name}.valid", "u1"), (name, _ENCODINGS[dtype]))])

    @property
    def width(self) -> int:
        return self._record.itemsize

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """One bytes object of `width` bytes per row."""
        import numpy as np
        import polars as pl

        rows = np.zeros(frame.height, dtype=self._record)
        for name, dtype in self.columns:
            series = frame.get_column(name)
            rows[f"{name}.valid"] = series.is_not_null().to_numpy()
            rows[name] = series.cast(pl.Float64 if _ENCODINGS[dtype] == "<f8" else pl.Int64).fill_null(0).to_numpy()
        buffer, width = rows.tobytes(), self.width
        return [buffer[i : i + width] for i in range(0, len(buffer), width)]

    def decode(self, payloads: Sequence[bytes]) -> pl.DataFrame:
        """The rows back as a frame with the original dtypes (nulls where a value was null)."""
        import numpy as np
        import polars as pl

        rows = np.frombuffer(b"".join(payloads), dtype=self._record, count=len(payloads))
        series = []
        for name, dtype in self.columns:
            values = pl.Series(name, rows[name].copy())
            valid = pl.Series(rows[f"{name}.valid"].astype(bool))
            series.append(pl.select(pl.when(valid).then(values).otherwise(None).alias(name)).to_series().cast(getattr(pl, dtype)))
        return pl.DataFrame(series) if series else pl.DataFrame()
