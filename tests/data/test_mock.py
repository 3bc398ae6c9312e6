"""Every data source makes a mock with the real table's schema, from what is declared, never from the real rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workbench.data.mock import MockColumn, mock_frame
from workbench.data.sources import SyntheticCohortSource, UciHeartSource


@pytest.mark.parametrize("source", [UciHeartSource(), SyntheticCohortSource(vendor_only_people=500)], ids=["uci_heart", "synthetic_cohort"])
def test_a_mock_has_every_part_with_the_real_columns_and_types(source: UciHeartSource | SyntheticCohortSource) -> None:
    real, mock = source.load(3, Path(".")), source.load_mock(3, Path("."))
    assert set(mock.parts) == set(real.parts)
    for part, frame in real.parts.items():
        assert mock.parts[part].schema == frame.schema, part
        assert 0 < mock.parts[part].height <= max(frame.height, 200)
        assert mock.parts[part].to_dicts() != frame.head(mock.parts[part].height).to_dicts()


def test_mock_columns_stay_in_their_declared_ranges_and_levels() -> None:
    columns = {
        "id": MockColumn(type="id"),
        "age": MockColumn(type="int", range=(18, 90)),
        "score": MockColumn(type="float", range=(-1, 1), missing=0.2),
        "ward": MockColumn(type="category", levels=["a", "b"]),
    }
    frame = mock_frame(columns, 500, seed=1)
    assert frame.get_column("id").n_unique() == 500
    assert frame.get_column("age").min() >= 18 and frame.get_column("age").max() <= 90
    assert 50 < frame.get_column("score").null_count() < 150
    assert set(frame.get_column("ward")) == {"a", "b"}
    assert frame.equals(mock_frame(columns, 500, seed=1))


def test_a_column_declared_without_what_a_mock_needs_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs its range"):
        MockColumn(type="float")
    with pytest.raises(ValidationError, match="needs its levels"):
        MockColumn(type="category")
    with pytest.raises(ValidationError, match="low end above its high end"):
        MockColumn(type="int", range=(5, 1))
