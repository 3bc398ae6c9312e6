"""Headless runs: the run directory, events, determinism, and failures that say what went wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from tests.reproducibility import assert_same_ledger, assert_same_metrics, fresh_randomness_steps
from workbench.events import Event, MessageSent, RunFinished, RunStarted, StepFinished, StepStarted
from workbench.recipe import Recipe, RecipeError, load_recipe, parse_recipe
from workbench.runner import RunError, RunResult, default_run_dir, run_recipe

RUN_FILES = {"recipe.yaml", "manifest.json", "ledger.jsonl", "metrics.json", "report.html", "events.jsonl", "status.json", "audit"}


def test_run_directory_holds_every_file(flagship_run: RunResult) -> None:
    assert {p.name for p in flagship_run.out_dir.iterdir()} == RUN_FILES


def test_recipe_as_run_reloads_to_the_same_hash(flagship_run: RunResult, flagship: Recipe) -> None:
    again = parse_recipe((flagship_run.out_dir / "recipe.yaml").read_text())
    assert again.hash() == flagship.hash() == flagship_run.manifest["recipe"]["hash"]


def test_manifest_records_data_packages_and_seed(flagship_run: RunResult, flagship: Recipe) -> None:
    manifest = json.loads((flagship_run.out_dir / "manifest.json").read_text())
    assert manifest["seeds"]["recipe"] == 7
    assert set(manifest["data"]) == {"general_hospital", "county_hospital", "trauma_center", "vendor", "rural_clinic"}
    assert all(len(fp["sha256"]) == 64 and fp["rows"] > 0 for fp in manifest["data"].values())
    assert {"ppml-workbench", "numpy", "polars", "pydantic"} <= set(manifest["packages"])
    assert manifest["ledger"]["bytes"] == flagship_run.ledger.total_bytes()
    assert set(manifest["timings_seconds"]) == set(flagship.step_names())


def test_metrics_hold_what_each_site_published(flagship_run: RunResult) -> None:
    evaluate = flagship_run.metrics["steps"]["evaluate"]
    assert set(evaluate) == {"general_hospital", "county_hospital", "trauma_center"}
    for site in evaluate.values():  # a small site alone may score below chance on a few positives; together they do not
        assert 0.0 <= site["local"]["auc"] <= 1.0 and 0.5 < site["federated"]["auc"] <= 1.0
        assert 0.0 <= site["local"]["brier"] < 0.25


def test_same_recipe_and_seed_give_the_same_metrics_and_ledger(light_flagship: Recipe, light_flagship_run: RunResult, tmp_path: Path) -> None:
    again = run_recipe(light_flagship, tmp_path / "again", base_dir=Path("recipes"))
    assert_same_metrics(again.out_dir / "metrics.json", light_flagship_run.out_dir / "metrics.json", light_flagship)
    assert_same_ledger(again.out_dir / "ledger.jsonl", light_flagship_run.out_dir / "ledger.jsonl", light_flagship)
    assert again.manifest["data"] == light_flagship_run.manifest["data"]


@pytest.mark.slow
def test_a_plain_recipe_repeats_bit_for_bit(tmp_path: Path) -> None:
    """Without PSI or CKKS nothing draws fresh randomness: metrics and ledger are byte-identical."""
    recipe = load_recipe(RECIPES / "uci_heart.yaml")
    assert not fresh_randomness_steps(recipe)
    first, second = (run_recipe(recipe, tmp_path / name, base_dir=RECIPES) for name in ("first", "second"))
    for name in ("metrics.json", "ledger.jsonl"):
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name


def _first_steps(recipe: Recipe, **update: object) -> Recipe:
    """The flagship up to local training (linkage, split, a model): what a property of the run itself needs, in seconds."""
    return recipe.model_copy(update={"steps": recipe.steps[:3], **update})


def test_another_seed_gives_other_metrics(light_flagship: Recipe, light_flagship_run: RunResult, tmp_path: Path) -> None:
    other = run_recipe(_first_steps(light_flagship, seed=light_flagship.seed + 1), tmp_path / "other", base_dir=RECIPES)
    for step, published in other.metrics["steps"].items():
        assert published != light_flagship_run.metrics["steps"][step], step
    assert other.manifest["data"]["vendor"]["sha256"] != light_flagship_run.manifest["data"]["vendor"]["sha256"]


@pytest.mark.slow
def test_events_tell_the_run_in_order(light_flagship: Recipe, tmp_path: Path) -> None:
    events: list[Event] = []
    recipe = _first_steps(light_flagship)
    result = run_recipe(recipe, tmp_path / "run", listeners=[events.append])
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    starts = [e.step for e in events if isinstance(e, StepStarted)]
    finishes = [e.step for e in events if isinstance(e, StepFinished)]
    assert starts == finishes == recipe.step_names()
    assert [e.message for e in events if isinstance(e, MessageSent)] == list(result.ledger.messages)
    logged = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert [entry["type"] for entry in logged] == [e.type for e in events]


def test_refuses_to_overwrite_a_run(flagship: Recipe, flagship_run: RunResult) -> None:
    with pytest.raises(RunError, match="already exists and is not empty"):
        run_recipe(flagship, flagship_run.out_dir)


def test_a_step_out_of_order_fails_with_a_clear_message(tmp_path: Path) -> None:
    text = """\
name: out_of_order
approvals: not_required
datasets: {uci: {kind: uci_heart}}
parties: {cleveland: {role: hospital, data: {dataset: uci, part: cleveland}}}
steps:
  - kind: local_train
    params: {label: heart_disease, features: {numeric: [age]}}
"""
    with pytest.raises(RecipeError, match="has no column\\(s\\) is_test when step 'local_train' \\(local_train\\) runs; add a `split` step"):
        parse_recipe(text)
    with pytest.raises(RunError, match="step 'local_train' .* no 'is_test' column; add a `split` step") as caught:
        run_recipe(parse_recipe(text, check_chain=False), tmp_path / "run")
    assert caught.value.user_error
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "failed"
    assert json.loads((tmp_path / "run" / "status.json").read_text())["step"] == "local_train"
    assert not (tmp_path / "run" / "error.log").exists(), "a user's mistake is a message, not a stack for developers"


def test_a_missing_feature_column_names_party_table_and_column(tmp_path: Path) -> None:
    text = """\
name: wrong_column
approvals: not_required
datasets: {uci: {kind: uci_heart}}
parties: {hungary: {role: hospital, data: {dataset: uci, part: hungary}}}
steps:
  - kind: split
    params: {label: heart_disease}
  - kind: local_train
    params: {label: heart_disease, features: {numeric: [age, cholesterol]}}
"""
    with pytest.raises(RecipeError, match="steps\\[1\\]\\.params\\.features: table 'data' at 'hungary' has no column\\(s\\) cholesterol"):
        parse_recipe(text)
    with pytest.raises(RunError, match="party 'hungary', table 'data': missing column\\(s\\) cholesterol; the table has 21 columns; check its header"):
        run_recipe(parse_recipe(text, check_chain=False), tmp_path / "run")


def test_a_missing_data_file_is_named(tmp_path: Path) -> None:
    text = """\
name: files
approvals: not_required
datasets: {mine: {kind: file, path: nowhere.csv}}
parties: {site: {role: hospital, data: {dataset: mine}}}
steps:
  - kind: split
    params: {label: y}
"""
    with pytest.raises(RunError, match="dataset 'mine': data file .*nowhere.csv does not exist"):
        run_recipe(parse_recipe(text), tmp_path / "run", base_dir=tmp_path)


def test_file_source_runs_end_to_end(tmp_path: Path) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    pl.DataFrame({"x": x, "y": rng.random(400) < 1 / (1 + np.exp(-2 * x))}).write_csv(tmp_path / "site.csv")
    text = """\
name: files
approvals: not_required
datasets: {mine: {kind: file, path: site.csv}}
parties: {site: {role: hospital, data: {dataset: mine}}}
steps:
  - {kind: split, params: {label: y}}
  - {kind: local_train, params: {label: y, features: {numeric: [x]}}}
  - {kind: evaluate, params: {label: y}}
"""
    result = run_recipe(parse_recipe(text), tmp_path / "run", base_dir=tmp_path)
    assert result.metrics["steps"]["evaluate"]["site"]["local"]["auc"] > 0.75


def test_two_runs_of_one_recipe_started_in_the_same_second_get_their_own_folders(flagship) -> None:
    """Issue 19: the notebook's run and the sidebar's, started together, would have shared a run folder."""
    folders = {default_run_dir(flagship, Path("runs")) for _ in range(20)}
    assert len(folders) == 20 and all(folder.name.startswith(f"flagship-{flagship.hash()[:8]}-") for folder in folders)
