from __future__ import annotations

import polars as pl
import pytest

from workbench.data.normalize import LinkageInputError
from workbench.data.payload import PayloadCodec


def test_rows_round_trip_with_dtypes_and_nulls_at_one_width() -> None:
    frame = pl.DataFrame(
        {"hr": [61.5, None, 70.0], "steps": [5000, 7000, None], "ok": [True, None, False]}, schema={"hr": pl.Float64, "steps": pl.Int32, "ok": pl.Boolean}
    )
    codec = PayloadCodec.for_frame(frame, ["hr", "steps", "ok"], "party 'v'")
    rows = codec.encode(frame)
    assert {len(row) for row in rows} == {codec.width} == {27}
    assert PayloadCodec.from_schema(codec.schema()).decode(rows).equals(frame)


def test_columns_that_cannot_travel_at_a_fixed_width_are_refused() -> None:
    frame = pl.DataFrame({"name": ["a"], "n": [1]})
    with pytest.raises(LinkageInputError, match=r"party 'v': payload column 'name' is String; payloads carry numeric and Boolean columns only"):
        PayloadCodec.for_frame(frame, ["name"], "party 'v'")
    with pytest.raises(LinkageInputError, match="payload column 'x' is not in the table; it has name, n"):
        PayloadCodec.for_frame(frame, ["x"], "party 'v'")
