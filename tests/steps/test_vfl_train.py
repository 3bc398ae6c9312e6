"""vfl_train in a whole run after psi_link (reveal both): the vitals stay at the vendor, the labels at the hospitals."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from workbench.ledger import Message, Protection
from workbench.models.features import FeatureError, TableRef
from workbench.recipe import RecipeError, load_recipe, parse_recipe
from workbench.runner import RunResult, run_recipe
from workbench.vfl.model import VerticalModel

ROOT = Path(__file__).resolve().parents[2]
VITALS = ("resting_hr", "daily_steps", "sleep_hours", "spo2")
HOSPITALS = ("general_hospital", "county_hospital", "trauma_center")
CKKS_ITERATIONS = 8


def small_vertical(protection: str, iterations: int = 500) -> str:
    """recipes/vertical.yaml on a few hundred patients, with one vfl_train step under `protection`."""
    raw = yaml.safe_load((ROOT / "recipes" / "vertical.yaml").read_text())
    raw["datasets"]["cohort"].update(
        vendor_only_people=200,
        hospitals=[
            {"name": name, "patients": 250, "emergency_rate": rate, "mean_age": 62, "risk_shift": 0.2, "vendor_coverage": 0.6}
            for name, rate in zip(HOSPITALS, (0.2, 0.3, 0.6))
        ],
    )
    vfl = next(step for step in raw["steps"] if step["kind"] == "vfl_train")
    vfl["params"].update(protection=protection, iterations=iterations, save_as="vertical")
    evaluate = next(step for step in raw["steps"] if step["kind"] == "evaluate")
    evaluate["params"].update(table="aligned", models=["local", "vertical"], baseline="local")
    vertical_chain = [step for step in raw["steps"] if step["kind"] in ("split", "local_train") or step.get("name") == "link"]
    raw["steps"] = [*vertical_chain, {**vfl, "name": "vfl"}, evaluate]
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.fixture(scope="module", params=[pytest.param("ckks", marks=pytest.mark.slow), "none"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, RunResult]:
    # Under CKKS a few iterations show what crosses and how: tests/vfl/test_protocol.py holds both to the optimum.
    iterations = CKKS_ITERATIONS if request.param == "ckks" else 500
    return request.param, run_recipe(parse_recipe(small_vertical(request.param, iterations)), tmp_path_factory.mktemp(request.param) / "run")


def _vfl_messages(run: RunResult) -> list[Message]:
    return [message for message in run.ledger.messages if message.step == "vfl"]


def test_training_runs_to_its_end_and_each_block_stays_where_it_was_trained(run: tuple[str, RunResult]) -> None:
    protection, run = run
    trained = run.metrics["steps"]["vfl"]["aggregator"]
    if protection == "none":
        assert trained["iterations"] < 500 and trained["gradient_norm"] <= 1e-6
    else:
        assert trained["iterations"] == CKKS_ITERATIONS
    for hospital in HOSPITALS:
        kept = run.stores[hospital].get("model/vertical")
        assert isinstance(kept, VerticalModel) and not run.stores[hospital].has("vfl/vfl/vendor_block")
        assert run.metrics["steps"]["vfl"][hospital]["matched_rows"] > 0
    assert run.stores["vendor"].has("vfl/vfl/vendor_block")


def test_each_hospital_scores_the_vertical_model_on_its_held_out_patients(run: tuple[str, RunResult]) -> None:
    """evaluate reads the joint scores kept by record id, the EHR block scoring the patients the vendor does not hold."""
    _, run = run
    for hospital in HOSPITALS:
        kept = run.stores[hospital].get("model/vertical")
        test = run.stores[hospital].table("aligned").filter(pl.col("is_test"))
        matched = test.filter(pl.col("link_id").is_not_null())
        assert set(kept.held_out_logits) == {str(i) for i in matched.get_column("patient_id")}, "every held-out matched patient, and only they"
        scores = run.metrics["steps"]["evaluate"][hospital]
        assert scores["vertical"]["n"] == test.height and 0.0 <= scores["vertical"]["auc"] <= 1.0
    general = run.stores["general_hospital"]
    training = general.table("aligned").filter(~pl.col("is_test") & pl.col("link_id").is_not_null())
    with pytest.raises(FeatureError, match=r"party 'general_hospital', table 'aligned': \d+ rows \(first patient_id .*\) were training rows of vfl"):
        general.get("model/vertical").predict_rows(training, TableRef("general_hospital", "aligned"))


def test_no_vital_sign_reaches_a_hospital_store(run: tuple[str, RunResult]) -> None:
    _, run = run
    for hospital in HOSPITALS:
        for name, table in run.stores[hospital].tables().items():
            assert not set(VITALS) & set(table.columns), f"{hospital} table {name} holds vendor columns"


def test_every_row_level_message_is_encrypted_under_ckks_and_marked_readable_in_the_clear(run: tuple[str, RunResult]) -> None:
    protection, run = run
    row_level = [m for m in _vfl_messages(run) if m.row_level]
    assert {m.kind for m in row_level} >= {"vfl.partial_logits", "vfl.residuals"}
    expected = {Protection.CKKS, Protection.MASKED} if protection == "ckks" else {Protection.NONE}
    assert {m.protection for m in row_level} == expected, "under CKKS the held-out scores come back masked for the hospital alone"
    from_vendor = {m.kind for m in _vfl_messages(run) if m.sender == "vendor" and m.receiver in HOSPITALS}
    expected_kinds = {"vfl.partial_logits", "vfl.score_partials"} | ({"vfl.layout"} if protection == "ckks" else set())
    assert from_vendor == expected_kinds, "two counts beside the encrypted vectors"


def test_a_table_not_linked_with_reveal_both_is_refused_naming_the_column() -> None:
    raw = yaml.safe_load(small_vertical("none"))
    raw["steps"] = [step for step in raw["steps"] if step["kind"] in ("split", "vfl_train")]
    raw["steps"][0]["params"]["table"] = "ehr"
    raw["steps"][-1]["params"]["table"] = "ehr"
    with pytest.raises(RecipeError, match=r"steps\[1\]\.params\.table: table 'ehr' .* has no column\(s\) link_id"):
        parse_recipe(yaml.safe_dump(raw))


def test_the_shipped_recipe_validates() -> None:
    recipe = load_recipe(ROOT / "recipes" / "vertical.yaml")
    assert [spec.params.protection for spec in recipe.steps if spec.kind == "vfl_train"] == ["none", "ckks"]
