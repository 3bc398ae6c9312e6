from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import uci_recipe
from workbench.data.splits import split_part
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.models.metrics import binary_metrics
from workbench.recipe import parse_recipe
from workbench.report.blocks import Figure, Table
from workbench.runner import RunResult, run_recipe
from workbench.steps.evaluate import Evaluate

CROSS_SITE = uci_recipe(
    "cross_site",
    """\
  - {kind: local_train, params: {label: heart_disease, features: {numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak]}}}
  - {kind: evaluate, params: {label: heart_disease, models: [local, local@cleveland], pooled: true}}
""",
)


def test_summary_shows_intervals_calibration_and_gains_only_where_the_paired_interval_excludes_zero(flagship_run: RunResult) -> None:
    results = flagship_run.metrics["steps"]["evaluate"]
    table, figure, calibration, gains = Evaluate.summarize(results)
    assert isinstance(table, Table) and isinstance(figure, Figure) and isinstance(calibration, Table) and isinstance(gains, Table)
    assert figure.png.startswith(b"\x89PNG")
    models = list(results["trauma_center"])
    assert [row[0] for row in table.rows[:: len(models)]] == ["general_hospital", "county_hospital", "trauma_center"]
    trauma = results["trauma_center"]["federated"]
    low, high = trauma["auc_ci"]
    assert low < trauma["auc"] < high and high - low > 0.2  # 6 positives: a wide interval
    assert dict(zip(table.columns, table.rows[len(models) * 2 + models.index("federated")]))["AUC"] == f"{trauma['auc']:.3f} [{low:.3f}, {high:.3f}]"
    assert [row[0] for row in gains.rows[:: len(models) - 1]] == ["trauma_center", "county_hospital", "general_hospital"]
    for row in gains.rows:
        found = dict(zip(gains.columns, row))
        versus = results[found["site"]][found["model"]]["versus"]
        d_low, d_high = versus["auc_difference_ci"]
        assert versus["auc_difference"] == pytest.approx(results[found["site"]][found["model"]]["auc"] - results[found["site"]]["local"]["auc"])
        assert found["verdict"] == ("no difference shown" if d_low <= 0 <= d_high else "gain" if d_low > 0 else "loss")
    verdicts = {dict(zip(gains.columns, row))["verdict"] for row in gains.rows}
    assert "no difference shown" in verdicts  # the large hospital gains nothing it can show


def test_a_sites_model_scored_at_another_site_equals_scoring_it_on_that_sites_rows(tmp_path: Path) -> None:
    run = run_recipe(parse_recipe(CROSS_SITE), tmp_path / "run")
    scores = run.metrics["steps"]["evaluate"]
    cleveland_model = run.stores["cleveland"].get(model_key("local"))
    for site in ("cleveland", "hungary"):
        table = run.stores[site].table("data")
        test = split_part(table, TableRef(site, "data"), test=True)
        y = label_vector(test, "heart_disease", TableRef(site, "data"))
        direct = binary_metrics(y, cleveland_model.predict_proba(design_matrix(test, cleveland_model.features, TableRef(site, "data"))))
        for metric in ("auc", "accuracy", "brier", "n", "positives"):
            assert scores[site]["local@cleveland"][metric] == pytest.approx(direct[metric], abs=1e-12)
    assert scores["cleveland"]["local@cleveland"]["auc"] == scores["cleveland"]["local"]["auc"]
    assert scores["hungary"]["local@cleveland"]["auc"] != scores["hungary"]["local"]["auc"]
    sent = [m for m in run.ledger.messages if m.step == "evaluate" and m.kind == "model.parameters"]
    assert [(m.sender, m.receiver) for m in sent] == [("cleveland", "hungary")]  # only to the other site, and declared by the name


def test_the_pooled_test_equals_scoring_the_joined_test_rows_within_its_binning_bound(tmp_path: Path) -> None:
    from workbench.models.metrics import roc_auc
    from workbench.models.uncertainty import auc_interval
    from workbench.report.scores import POOLED_TEST

    run = run_recipe(parse_recipe(CROSS_SITE), tmp_path / "run")
    pooled = run.metrics["steps"]["evaluate"][POOLED_TEST]
    for ref in ("local", "local@cleveland"):
        ys, ps = [], []
        for site in ("cleveland", "hungary"):
            where = TableRef(site, "data")
            test = split_part(run.stores[site].table("data"), where, test=True)
            model = run.stores["cleveland" if ref == "local@cleveland" else site].get(model_key("local"))
            ys.append(label_vector(test, "heart_disease", where))
            ps.append(model.predict_proba(design_matrix(test, model.features, where)))
        y, p = np.concatenate(ys), np.concatenate(ps)
        joined = binary_metrics(y, p)
        s = pooled[ref]
        assert (s["n"], s["positives"]) == (joined["n"], joined["positives"])
        assert abs(s["auc"] - roc_auc(y, p)) <= s["auc_binning_error"] + 1e-12 and s["auc_binning_error"] < 1e-3
        assert s["auc_ci"] == pytest.approx(auc_interval(y, p), abs=2e-3)
        assert s["brier"] == pytest.approx(joined["brier"], abs=1e-6) and s["accuracy"] == joined["accuracy"]
    pooling = [m for m in run.ledger.messages if m.step == "evaluate" and m.kind.startswith("pooled-test.")]
    assert {m.protection.value for m in pooling if m.kind == "pooled-test.masked"} == {"masked"}
    assert not any(m.row_level for m in run.ledger.messages if m.step == "evaluate")
    assert "Pooled test: every site's held-out rows together" in html.unescape((run.out_dir / "report.html").read_text())


def test_a_threshold_rule_chooses_on_the_validation_rows_and_scores_the_test_rows(tmp_path: Path) -> None:
    from workbench.data.splits import validation_part
    from workbench.models.thresholds import ThresholdRule

    recipe = CROSS_SITE.replace("{kind: split, params: {label: heart_disease}}", "{kind: split, params: {label: heart_disease, validation_fraction: 0.25}}")
    recipe = recipe.replace("pooled: true}", "pooled: true, threshold_rule: {rule: sensitivity, target: 0.8}}")
    run = run_recipe(parse_recipe(recipe), tmp_path / "run")
    for site in ("cleveland", "hungary"):
        where, table = TableRef(site, "data"), run.stores[site].table("data")
        model = run.stores[site].get(model_key("local"))
        rows = validation_part(table, where)
        y_validation = label_vector(rows, "heart_disease", where)
        p_validation = model.predict_proba(design_matrix(rows, model.features, where))
        chosen = ThresholdRule(rule="sensitivity", target=0.8).choose(y_validation, p_validation)
        scores = run.metrics["steps"]["evaluate"][site]["local"]
        assert scores["threshold"] == chosen and scores["threshold_rule"]["chosen_on"] == "validation rows"
        test = split_part(table, where, test=True)
        y, p = label_vector(test, "heart_disease", where), model.predict_proba(design_matrix(test, model.features, where))
        assert scores["sensitivity"] == pytest.approx(np.mean(p[y == 1] >= chosen))
        assert scores["specificity"] == pytest.approx(np.mean(p[y == 0] < chosen))
        low, high = scores["sensitivity_ci"]
        assert low <= scores["sensitivity"] <= high


def test_kept_predictions_stay_in_each_sites_store_and_score_as_published(tmp_path: Path) -> None:
    from workbench.models.metrics import roc_auc

    recipe = CROSS_SITE.replace("pooled: true}", "pooled: true, keep_predictions: predictions}")
    run = run_recipe(parse_recipe(recipe), tmp_path / "run")
    for site in ("cleveland", "hungary"):
        kept = run.stores[site].table("predictions")
        assert kept.height == run.metrics["steps"]["evaluate"][site]["local"]["n"] and kept["is_test"].all()
        y = kept["heart_disease"].cast(float).to_numpy()
        assert roc_auc(y, kept["prediction_local_at_cleveland"].to_numpy()) == run.metrics["steps"]["evaluate"][site]["local@cleveland"]["auc"]
    assert not any(m.row_level for m in run.ledger.messages)


def test_evaluation_scores_the_held_out_rows_only(flagship_run: RunResult) -> None:
    for site, scores in flagship_run.metrics["steps"]["evaluate"].items():
        assert scores["local"]["n"] == flagship_run.metrics["steps"]["split"][site]["test_rows"]


def test_local_training_uses_the_training_rows_only(flagship_run: RunResult) -> None:
    for site, trained in flagship_run.metrics["steps"]["local_train"].items():
        split = flagship_run.metrics["steps"]["split"][site]
        assert trained["train_rows"] == split["rows"] - split["test_rows"]


def test_a_threshold_rule_refuses_a_fixed_threshold_beside_it_and_the_validation_part() -> None:
    from pydantic import ValidationError

    from workbench.steps.evaluate import EvaluateParams

    with pytest.raises(ValidationError, match="give one of them"):
        EvaluateParams(label="y", threshold=0.3, threshold_rule={"rule": "youden"})
    with pytest.raises(ValidationError, match="cannot score them too"):
        EvaluateParams(label="y", part="validation", threshold_rule={"rule": "youden"})
