"""The side-by-side section: cost, ledger and utility of each federated training step against the plain one."""

from __future__ import annotations

from workbench.recipe import Recipe, load_recipe
from workbench.report.blocks import Table, Text
from workbench.report.comparison import comparison_blocks
from workbench.runner import RunResult

STEPS = ["fl_plain", "fl_dp", "fl_secagg", "fl_ckks", "fl_ckks_key_holder"]


def test_each_training_step_has_a_row_computed_from_the_manifest_and_ledger(light_flagship_run: RunResult) -> None:
    run = light_flagship_run
    story, cost, utility = comparison_blocks(_recipe(run), run.metrics, run.manifest, run.ledger)
    assert isinstance(story, Text) and isinstance(cost, Table) and isinstance(utility, Table)
    rows = {row[0]: dict(zip(cost.columns, row)) for row in cost.rows}
    assert list(rows) == STEPS
    timings = run.manifest["timings_seconds"]
    for step, row in rows.items():
        messages = [m for m in run.ledger.messages if m.step == step]
        assert row["messages"] == len(messages) and row["MB"] == round(sum(m.nbytes for m in messages) / 1e6, 3)
        assert row["× fl_plain"] == round(timings[step] / timings["fl_plain"], 2)
    assert rows["fl_plain"]["messages by protection"] == f"none {rows['fl_plain']['messages']}"
    assert "ckks" in rows["fl_ckks"]["messages by protection"] and "masked" in rows["fl_ckks_key_holder"]["messages by protection"]
    assert {"masked", "encrypted"} <= set(rows["fl_secagg"]["messages by protection"].split()), "masked updates, sealed shares"
    assert (rows["fl_ckks"]["custody"], rows["fl_ckks_key_holder"]["custody"]) == ("clients", "key_holder")
    assert rows["fl_ckks"]["bytes × fl_plain"] > 1, "ciphertexts are larger than plain updates"
    epsilon = max(site["epsilon"] for site in run.metrics["steps"]["fl_dp"]["aggregator"]["dp"].values())
    assert rows["fl_dp"]["DP epsilon (largest site)"] == round(epsilon, 3) <= 4.0 and rows["fl_plain"]["DP epsilon (largest site)"] == "—"
    received = sum(summary["linked"] for party, summary in run.metrics["steps"]["link"].items() if party != "vendor")
    assert received > 0 and {row["rows of others' data at hospitals"] for row in rows.values()} == {received}, "every step trains on the received vitals"


def test_utility_rows_show_each_model_and_its_difference_from_plain(light_flagship_run: RunResult) -> None:
    run = light_flagship_run
    *_, utility = comparison_blocks(_recipe(run), run.metrics, run.manifest, run.ledger)
    rows = {row[0]: dict(zip(utility.columns, row)) for row in utility.rows}
    scores = run.metrics["steps"]["evaluate"]
    for step, model in zip(STEPS, ("federated", "federated_dp", "federated_secagg", "federated_ckks", "federated_key_holder")):
        assert rows[step]["model"] == model
        assert rows[step]["AUC trauma_center"] == scores["trauma_center"][model]["auc"]
    assert rows["fl_plain"]["largest |ΔAUC| vs fl_plain"] == "0.0e+00"
    assert float(rows["fl_ckks"]["largest |ΔBrier| vs fl_plain"]) < 1e-4
    assert float(rows["fl_dp"]["largest |ΔAUC| vs fl_plain"]) > 1e-4, "DP-SGD's noise changes the model"


def test_the_report_has_the_section(light_flagship_run: RunResult) -> None:
    html = (light_flagship_run.out_dir / "report.html").read_text()
    assert "Federated training side by side" in html and "Cost and ledger per federated training step" in html


def test_a_recipe_with_one_training_step_gets_no_section(light_flagship_run: RunResult) -> None:
    recipe = _recipe(light_flagship_run)
    only_plain = recipe.model_copy(update={"steps": [s for s in recipe.steps if s.kind != "fl_train" or s.name == "fl_plain"]})
    assert comparison_blocks(only_plain, light_flagship_run.metrics, light_flagship_run.manifest, light_flagship_run.ledger) == []


def _recipe(run: RunResult) -> Recipe:
    """The recipe as run (overrides applied), as the run directory keeps it."""
    return load_recipe(run.out_dir / "recipe.yaml")
