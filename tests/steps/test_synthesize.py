"""synthesize as a step: only noisy totals reach the coordinator, the table is released and trained on, and the report
measures it against each site's own rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from workbench.ledger import Protection
from workbench.models import model_key
from workbench.parties import COORDINATOR
from workbench.recipe import RecipeError, parse_recipe
from workbench.runner import RELEASED_DIR, RunResult, run_recipe

COHORT = {
    "kind": "synthetic_cohort",
    "vendor_only_people": 0,
    "hospitals": [
        {"name": "north", "patients": 900, "emergency_rate": 0.2, "mean_age": 62, "risk_shift": 0, "vendor_coverage": 0},
        {"name": "south", "patients": 400, "emergency_rate": 0.4, "mean_age": 68, "risk_shift": 0.3, "vendor_coverage": 0},
    ],
}
COLUMNS = {
    "death_30d": {"levels": [False, True]},
    "age": {"edges": [18, 50, 65, 80, 96]},
    "asa_class": {"levels": [1, 2, 3, 4, 5]},
    "emergency": {"levels": [False, True]},
    "albumin": {"edges": [1.5, 3.5, 4.0, 4.4, 5.2]},
}
FEATURES = {"numeric": ["age", "asa_class", "emergency", "albumin"]}


def recipe(**params: object) -> str:
    parties = {site: {"role": "hospital", "data": {"dataset": "cohort", "part": site}} for site in ("north", "south")}
    steps = [
        {"kind": "split", "params": {"label": "death_30d"}},
        {"kind": "synthesize", "params": {"label": "death_30d", "features": FEATURES, "columns": COLUMNS, **params}},
        {"kind": "evaluate", "params": {"label": "death_30d", "models": ["synthetic"]}},
    ]
    return yaml.safe_dump(
        {"name": "synthesize", "seed": 4, "approvals": "not_required", "datasets": {"cohort": COHORT}, "parties": parties, "steps": steps}, sort_keys=False
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_recipe(parse_recipe(recipe()), tmp_path_factory.mktemp("synthesize") / "run")


def test_no_sites_counts_reach_anyone_readable(run: RunResult) -> None:
    """What a hospital sends in this step: public keys, sealed key shares, masked count vectors and the shares that open
    the masks' sum, never its counts; the coordinator answers with the tree (chosen from noisy totals) and the table."""
    sent = {(m.kind.rsplit(".", 1)[-1], m.protection) for m in run.ledger.messages if m.step == "synthesize" and m.sender != COORDINATOR}
    assert sent == {
        ("keys", Protection.NONE),
        ("shares", Protection.ENCRYPTED),
        ("masked", Protection.MASKED),
        ("unmask-shares", Protection.NONE),
        ("summary", Protection.NONE),
    }
    answered = {(m.kind, m.protection) for m in run.ledger.messages if m.step == "synthesize" and m.sender == COORDINATOR}
    assert ("synthesize.tree", Protection.DP) in answered and ("synthesize.table", Protection.DP) in answered
    assert {m.protection for m in run.ledger.messages if m.step == "synthesize" and m.row_level} == {Protection.DP}


def test_the_table_is_released_trained_on_and_scored(run: RunResult) -> None:
    released = pl.read_parquet(run.out_dir / RELEASED_DIR / "synthesize" / "synthetic.parquet")
    assert released.columns == list(COLUMNS)
    for site in ("north", "south"):
        assert run.stores[site].table("synthetic").equals(released)
        assert run.stores[site].has(model_key("synthetic"))
        assert run.metrics["steps"]["evaluate"][site]["synthetic"]["auc"] > 0.6
    generator = run.metrics["steps"]["synthesize"]["generator"]
    assert abs(generator["rows"] - 910) < 100  # the noisy count of the training rows (70 % of 1,300)
    assert len(generator["tree"]) == len(COLUMNS) - 2
    assert run.manifest["steps"]["synthesize"]["dp"]["epsilon"] == 4.0


def test_without_noise_the_released_rows_keep_the_training_rows_marginals(tmp_path: Path) -> None:
    exact = run_recipe(parse_recipe(recipe(epsilon=None)), tmp_path / "run")
    generator = exact.metrics["steps"]["synthesize"]["generator"]
    assert generator["rows"] == 910 and generator["sigma_tree"] == 0.0
    released = exact.stores["north"].table("synthetic")
    train = pl.concat([exact.stores[site].table("data").filter(~pl.col("is_test")) for site in ("north", "south")])
    for column in ("death_30d", "emergency"):
        p, q = train[column].mean(), released[column].mean()
        assert abs(p - q) <= 4 * np.sqrt(2 * p * (1 - p) / len(train)), column


def test_the_report_measures_fidelity_and_closeness_at_each_site(run: RunResult) -> None:
    for site in ("north", "south"):
        figures = run.metrics["steps"]["synthesize"][site]
        assert 0 <= figures["fidelity"]["tv_1way_mean"] <= figures["fidelity"]["tv_1way_max"] <= 1
        assert 0 <= figures["fidelity"]["pmse"] <= 0.25
        assert 0.3 < figures["privacy"]["dcr_share_closer_to_train"] < 0.7  # built from counts, not copied rows


def test_the_model_must_read_synthesized_columns_only() -> None:
    with pytest.raises(RecipeError, match="reads creatinine, which columns does not synthesize"):
        parse_recipe(recipe(features={"numeric": ["age", "creatinine"]}))


def test_a_value_outside_the_declared_levels_is_named_with_party_table_and_column(tmp_path: Path) -> None:
    from workbench.runner import RunError

    columns = {**COLUMNS, "asa_class": {"levels": [1, 2, 3, 4]}}
    with pytest.raises(RunError, match=r"party 'north', table 'data': column 'asa_class' holds value\(s\) 5 not among its levels"):
        run_recipe(parse_recipe(recipe(columns=columns)), tmp_path / "run")
