"""encrypted_inference as a step: every row's logit to 1e-4, only ciphertexts and a row count cross, and a budget that
refuses a query before any ciphertext is sent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from workbench.crypto.evaluation_budget import EvaluationBudgetError
from workbench.ledger import Protection
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.models.metrics import roc_auc
from workbench.recipe import parse_recipe
from workbench.runner import RunError, RunResult, run_recipe
from workbench.steps.encrypted_inference import EncryptedInference

COHORT = {
    "kind": "synthetic_cohort",
    "vendor_only_people": 0,
    "hospitals": [{"name": "north", "patients": 400, "emergency_rate": 0.2, "mean_age": 62, "risk_shift": 0, "vendor_coverage": 0}],
    "clinics": [{"name": "east_clinic", "patients": 300, "emergency_rate": 0.3, "mean_age": 66, "risk_shift": 0.2, "monitored": 0.5}],
}
FEATURES = {
    "numeric": ["age", "asa_class", "emergency", "albumin", "creatinine"],
    "categorical": {"surgery_type": ["general", "orthopedic", "vascular", "cardiac", "neuro"]},
}
INFERENCE = {"label": "death_30d", "model": "local", "model_owner": "north", "into": "scored"}


def recipe(*inference: dict, model: dict | None = None, extra_hospital: bool = False) -> str:
    parties = {
        "north": {"role": "hospital", "data": {"dataset": "cohort", "part": "north"}},
        "east_clinic": {"role": "clinic", "data": {"dataset": "cohort", "part": "east_clinic"}},
    }
    hospitals = list(COHORT["hospitals"])
    if extra_hospital:
        hospitals.append({**hospitals[0], "name": "south"})
        parties["south"] = {"role": "hospital", "data": {"dataset": "cohort", "part": "south"}}
    steps = [
        {"kind": "split", "params": {"label": "death_30d"}},
        {"kind": "local_train", "params": {"label": "death_30d", "features": FEATURES, **({"model": model} if model else {})}},
        *({"kind": "encrypted_inference", "params": {**INFERENCE, **params}} for params in inference),
    ]
    raw = {
        "name": "inference",
        "seed": 5,
        "approvals": "not_required",
        "datasets": {"cohort": {**COHORT, "hospitals": hospitals}},
        "parties": parties,
        "steps": steps,
    }
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_recipe(parse_recipe(recipe({})), tmp_path_factory.mktemp("inference") / "run")


def plaintext_logits(run: RunResult, querier: str, owner: str, model: str, table: str) -> np.ndarray:
    """What the holder would compute in the clear on the querier's rows: the reference the encrypted scores must meet."""
    held = run.stores[owner].get(model_key(model))
    X = design_matrix(run.stores[querier].table(table), held.features, TableRef(querier, table))
    return held.standardizer.apply(X) @ held.params[:-1] + held.params[-1]


def test_every_decrypted_logit_equals_the_plaintext_models_within_the_precision(run: RunResult) -> None:
    scored = run.stores["east_clinic"].table("scored")
    p = scored["prediction"].to_numpy()
    expected = plaintext_logits(run, "east_clinic", "north", "local", "data")
    assert len(p) == 300
    assert np.abs(np.log(p / (1 - p)) - expected).max() <= 1e-4
    y = label_vector(scored, "death_30d", TableRef("east_clinic", "scored"))
    published = run.metrics["steps"]["encrypted_inference"]["east_clinic"]
    assert published["auc"] == pytest.approx(roc_auc(y, 1 / (1 + np.exp(-expected))), abs=1e-4)


def test_only_ciphertexts_and_the_row_count_cross_and_never_a_weight(run: RunResult) -> None:
    messages = [m for m in run.ledger.messages if m.step == "encrypted_inference"]
    assert [(m.sender, m.receiver, m.kind, m.protection) for m in messages] == [
        ("east_clinic", "north", "inference.context", Protection.NONE),
        ("east_clinic", "north", "inference.rows", Protection.NONE),
        ("east_clinic", "north", "inference.query", Protection.CKKS),
        ("north", "east_clinic", "inference.reply", Protection.CKKS),
        ("east_clinic", "coordinator", "metrics.summary", Protection.NONE),
    ]
    assert all(m.protection is Protection.CKKS for m in messages if m.row_level)
    assert not run.stores["east_clinic"].has(model_key("local"))


def test_by_default_it_runs_at_the_clinics_and_the_models_owner_only() -> None:
    parsed = parse_recipe(recipe({}, extra_hospital=True))
    assert parsed.step_parties(parsed.steps[-1]) == ["east_clinic", "north"]


def test_a_query_over_the_budget_is_refused_before_any_ciphertext_is_sent(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="'north' refuses to evaluate 300 rows for 'east_clinic': its cap is 299") as refused:
        run_recipe(parse_recipe(recipe({"max_rows_per_querier": 299})), tmp_path / "run")
    assert isinstance(refused.value.__cause__, EvaluationBudgetError)
    kinds = [line for line in (tmp_path / "run" / "ledger.jsonl").read_text().splitlines() if "inference." in line]
    assert kinds and not [line for line in kinds if "inference.query" in line or "inference.reply" in line]


def test_the_budget_holds_across_steps(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="its cap is 500 per requester and 300 are used"):
        run_recipe(parse_recipe(recipe({"max_rows_per_querier": 500}, {"max_rows_per_querier": 500})), tmp_path / "run")


def test_an_mlp_is_refused_with_why(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="scores logistic models only .*relinearization keys"):
        run_recipe(parse_recipe(recipe({}, model={"family": "mlp", "hidden": 4})), tmp_path / "run")


def test_the_report_says_the_budget_lets_the_querier_recover_the_model(run: RunResult) -> None:
    said = " ".join(EncryptedInference.leakage(run.metrics["steps"]["encrypted_inference"]))
    assert "determined by its logits on 10 rows" in said and "can recover the model" in said


def test_the_flagship_clinic_scores_as_the_plaintext_federated_model(light_flagship_run: RunResult) -> None:
    """Issue 15: a fourth site that trained nothing gets the federated model's AUC on its rows, to 1e-4."""
    expected = plaintext_logits(light_flagship_run, "rural_clinic", "general_hospital", "federated", "patients")
    scored = light_flagship_run.stores["rural_clinic"].table("scored")
    y = label_vector(scored, "death_30d", TableRef("rural_clinic", "scored"))
    published = light_flagship_run.metrics["steps"]["encrypted_inference"]["rural_clinic"]
    assert published["auc"] == pytest.approx(roc_auc(y, 1 / (1 + np.exp(-expected))), abs=1e-4)
    crossing = {(m.kind, m.protection) for m in light_flagship_run.ledger.messages if m.step == "encrypted_inference" and m.receiver != "coordinator"}
    assert crossing == {
        ("inference.context", Protection.NONE),
        ("inference.rows", Protection.NONE),
        ("inference.query", Protection.CKKS),
        ("inference.reply", Protection.CKKS),
    }


def test_a_clinic_table_without_a_column_the_model_reads_is_named(tmp_path: Path) -> None:
    """The model's columns are the recipe's; a clinic whose table lacks one is told which, before anything is encrypted."""
    from workbench.data.cohort import CohortParams, generate_cohort

    clinic = generate_cohort(CohortParams.model_validate({k: v for k, v in COHORT.items() if k != "kind"}), 5).parts["east_clinic"]
    clinic.drop("albumin").write_parquet(tmp_path / "clinic.parquet")
    raw = yaml.safe_load(recipe({}))
    raw["datasets"]["clinic_file"] = {"kind": "file", "path": str(tmp_path / "clinic.parquet")}
    raw["parties"]["east_clinic"]["data"] = {"dataset": "clinic_file"}
    with pytest.raises(RunError, match=r"party 'east_clinic', table 'data': missing column\(s\) albumin") as refused:
        run_recipe(parse_recipe(yaml.safe_dump(raw, sort_keys=False)), tmp_path / "run")
    assert refused.value.user_error
    assert "inference.query" not in (tmp_path / "run" / "ledger.jsonl").read_text()
