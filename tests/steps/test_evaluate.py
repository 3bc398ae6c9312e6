from __future__ import annotations

from workbench.report.blocks import Figure, Table
from workbench.runner import RunResult
from workbench.steps.evaluate import Evaluate


def test_summary_is_a_table_per_site_and_model_an_auc_figure_and_gains(flagship_run: RunResult) -> None:
    table, figure, gains = Evaluate.summarize(flagship_run.metrics["steps"]["evaluate"])
    assert isinstance(table, Table) and isinstance(figure, Figure) and isinstance(gains, Table)
    models = ["local", "federated", "federated_ckks", "federated_dp", "federated_key_holder", "federated_secagg", "pooled"]  # metrics.json keeps keys sorted
    assert [row[0] for row in table.rows[:: len(models)]] == ["general_hospital", "county_hospital", "trauma_center"]
    assert figure.png.startswith(b"\x89PNG")
    assert gains.columns == ["site", "held-out n", *models, *(f"{m} − local" for m in models[1:])]
    assert [row[0] for row in gains.rows] == ["trauma_center", "county_hospital", "general_hospital"]
    trauma = dict(zip(gains.columns, gains.rows[0]))
    assert trauma["federated − local"] == trauma["federated"] - trauma["local"]


def test_evaluation_scores_the_held_out_rows_only(flagship_run: RunResult) -> None:
    for site, scores in flagship_run.metrics["steps"]["evaluate"].items():
        assert scores["local"]["n"] == flagship_run.metrics["steps"]["split"][site]["test_rows"]


def test_local_training_uses_the_training_rows_only(flagship_run: RunResult) -> None:
    for site, trained in flagship_run.metrics["steps"]["local_train"].items():
        split = flagship_run.metrics["steps"]["split"][site]
        assert trained["train_rows"] == split["rows"] - split["test_rows"]
