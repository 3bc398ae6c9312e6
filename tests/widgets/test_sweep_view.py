"""A sweep in a notebook: one group of variants, read from its folder, with the comparison sweep.html shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import uci_recipe
from workbench.sweep import Sweep, SweepError, run_sweep
from workbench.widgets import SweepView

RECIPE = uci_recipe(
    "swept_view",
    """\
  - {kind: local_train, params: {label: heart_disease, features: {numeric: [age, chol, sex_male]}, model: {l2: 1.0}}}
  - {kind: evaluate, params: {label: heart_disease, models: [local]}}
""",
)


def test_the_view_groups_a_sweeps_variants_with_their_comparison(tmp_path: Path) -> None:
    result = run_sweep(RECIPE, Sweep.parse("steps[local_train].params.model.l2=0.01,-1"), tmp_path / "sweep")
    view = SweepView(tmp_path / "sweep")
    header, body = (child.value for child in view.children)
    assert "1 of 2 variants finished" in header and "steps[local_train].params.model.l2" in header
    assert [v.status for v in view.variants] == ["finished", "failed"]
    metrics = json.loads((tmp_path / "sweep" / "l2=0.01" / "metrics.json").read_text())
    assert f">{metrics['steps']['evaluate']['cleveland']['local']['auc']:.3f}<" in body  # as the view's tables print a score
    assert "Held-out AUC against l2" in body and result.rows


def test_a_folder_that_is_no_sweep_is_named(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=f"{tmp_path}: no readable sweep.json"):
        SweepView(tmp_path)
