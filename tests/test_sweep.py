"""A sweep runs one recipe at several values of one field, one normal run directory each, and compares them in one page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import uci_recipe
from workbench.cli import app
from workbench.recipe import parse_recipe
from workbench.report.html import number_cell
from workbench.sweep import MAX_VALUES, Sweep, SweepError, resolve_path

STEPS = """\
  - {kind: local_train, params: {label: heart_disease, features: {numeric: [age, chol, sex_male, cp_asymptomatic]}, model: {l2: 1.0}}}
  - {kind: evaluate, params: {label: heart_disease, models: [local]}}
  - {kind: audit, params: {label: heart_disease, models: [local], reference_models: 1, resamples: 20}}
"""
RECIPE = uci_recipe("swept", STEPS)
SWEEP = "steps[local_train].params.model.l2=0.01,-1,100"
"""Two values that train different models, and one the schema refuses (l2 is at least 0)."""
LABELS = ["l2=0.01", "l2=-1", "l2=100"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The sweep through the command line, as a researcher runs it: (its folder, the CLI's result)."""
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "recipe.yaml").write_text(RECIPE)
    result = CliRunner().invoke(app, ["run", str(folder / "recipe.yaml"), "--sweep", SWEEP, "--out", str(folder / "out")], terminal_width=200)
    return folder / "out", result


def test_every_good_value_gets_a_normal_run_directory_and_the_bad_one_is_recorded_as_failed(swept: tuple[Path, Any]) -> None:
    out, result = swept
    assert result.exit_code == 2, result.output
    record = json.loads((out / "sweep.json").read_text())
    assert (record["path"], record["resolved_path"]) == (SWEEP.split("=")[0], "steps[1].params.model.l2")
    assert (record["values"], record["labels"]) == ([0.01, -1, 100], LABELS)
    variants = {v["label"]: v for v in record["variants"]}
    assert [variants[label]["status"] for label in LABELS] == ["finished", "failed", "finished"] and record["status"] == "failed"
    for label, l2 in (("l2=0.01", 0.01), ("l2=100", 100)):
        assert variants[label]["run_dir"] == label and variants[label]["value"] == l2
        assert {"metrics.json", "report.html", "events.jsonl", "recipe.yaml"} <= {p.name for p in (out / label).iterdir()}
        assert parse_recipe((out / label / "recipe.yaml").read_text()).steps[1].params.model.l2 == l2
    failed = variants["l2=-1"]
    assert failed["run_dir"] is None and not (out / "l2=-1").exists()
    assert failed["error"].startswith("steps[1].params.model.l2: ") and "greater than or equal to 0" in failed["error"]


def test_the_cli_prints_a_line_a_variant_and_where_the_comparison_is(swept: tuple[Path, Any]) -> None:
    out, result = swept
    assert re.search(r"^l2=0\.01: mean AUC over 2 sites: local 0\.\d{3} · highest attack AUC", result.output, re.MULTILINE), result.output
    assert re.search(r"^l2=-1: failed: steps\[1\]\.params\.model\.l2: ", result.output, re.MULTILINE)
    assert f"sweep of {SWEEP.split('=')[0]}: 2 of 3 variants finished; comparison in {out / 'sweep.html'}" in result.output
    assert "Traceback" not in result.output


def test_the_comparison_holds_each_runs_own_auc_and_strongest_attack(swept: tuple[Path, Any]) -> None:
    out, _ = swept
    rows = json.loads((out / "sweep.json").read_text())["comparison"]
    page = (out / "sweep.html").read_text()
    aucs = {}
    for label in ("l2=0.01", "l2=100"):
        steps = json.loads((out / label / "metrics.json").read_text())["steps"]
        for site in ("cleveland", "hungary"):
            (row,) = [r for r in rows if (r["variant"], r["site"], r["model"]) == (label, site, "local")]
            aucs[label, site] = steps["evaluate"][site]["local"]["auc"]
            assert row["auc"] == aucs[label, site]
            attacks = steps["audit"][site]["local"]
            strongest = max(("loss", "rmia"), key=lambda attack: attacks[attack]["tpr_at_fpr_0.01"]["value"])
            assert (row["attack"], row["attack_tpr_at_1pct_fpr"], row["attack_interval"]) == (
                strongest,
                attacks[strongest]["tpr_at_fpr_0.01"]["value"],
                attacks[strongest]["tpr_at_fpr_0.01"]["interval"],
            )
            assert "dp_epsilon" not in row  # no step published a DP epsilon, so the column is left out
            assert f'<td>{label}</td><td>{site}</td><td>local</td><td class="num">{number_cell(row["auc"])}</td>' in page
    assert aucs["l2=0.01", "cleveland"] != aucs["l2=100", "cleveland"], "the swept value reached the model"
    assert page.count("<figure>") == 2 and "DP ε" not in page
    assert "l2=-1</td><td>-1</td><td>failed</td>" in page


def test_workbench_runs_lists_a_sweeps_runs_by_sweep_and_label(swept: tuple[Path, Any]) -> None:
    out, _ = swept
    listed = CliRunner().invoke(app, ["runs", str(out.parent), "--json"])
    assert listed.exit_code == 0, listed.output
    assert {entry["run"]: entry["status"] for entry in json.loads(listed.output)} == {"out/l2=0.01": "finished", "out/l2=100": "finished"}


def test_a_sweep_into_a_folder_that_is_not_a_sweeps_is_refused(swept: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = swept
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    again = CliRunner().invoke(app, ["run", str(tmp_path / "recipe.yaml"), "--sweep", SWEEP, "--out", str(out)])
    assert again.exit_code == 2 and "already exists and is not empty" in again.output
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")
    forced = CliRunner().invoke(app, ["run", str(tmp_path / "recipe.yaml"), "--sweep", SWEEP, "--out", str(tmp_path / "notes"), "--force"])
    assert forced.exit_code == 2 and "no sweep.json" in forced.output and (tmp_path / "notes" / "mine.txt").read_text() == "keep"


def test_values_are_read_as_yaml_and_labelled_safely() -> None:
    sweep = Sweep.parse("steps[fl_dp].params.epsilon=0.5, null,8")
    assert sweep.values == (0.5, None, 8) and sweep.labels() == ["epsilon=0.5", "epsilon=null", "epsilon=8"]
    assert Sweep("datasets.d.path", ("a/b.csv", "c d.csv")).labels() == ["path=a_b.csv", "path=c_d.csv"]
    assert Sweep.parse("seed=1,2").labels() == ["seed=1", "seed=2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seed", "expected PATH=v1,v2"),
        ("seed=1,,2", "an empty value between commas"),
        ("seed=1,1", "1 given more than once"),
        ("steps[0].params.l2=.inf", "write null"),
        ("seed=" + ",".join(map(str, range(MAX_VALUES + 1))), f"a sweep runs at most {MAX_VALUES}"),
        ("steps..x=1", "cannot read path"),
    ],
)
def test_a_sweep_that_cannot_run_is_refused_before_anything_runs(text: str, expected: str) -> None:
    with pytest.raises(SweepError, match=re.escape(expected)):
        Sweep.parse(text)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("steps[local_trian].params.model.l2", "no step named 'local_trian' (did you mean 'local_train'?)"),
        ("steps[local_train].params.model.familly", "steps[1].params.model has no field 'familly' (did you mean 'family'?); its fields: family, hidden, l2"),
        ("steps[9].params", "steps has no item 9"),
        ("seed.x", "seed is a value (1)"),
    ],
)
def test_a_path_the_recipe_does_not_have_is_one_error_naming_it(path: str, expected: str) -> None:
    with pytest.raises(SweepError, match=re.escape(expected)):
        resolve_path(parse_recipe(RECIPE), path)


def test_a_path_resolves_to_indices() -> None:
    assert resolve_path(parse_recipe(RECIPE), "steps[audit].params.reference_models") == ("steps", 3, "params", "reference_models")


@pytest.mark.slow
def test_the_privacy_frontier_recipe_sweeps_epsilon_with_the_non_private_model_beside_each_variant(tmp_path: Path) -> None:
    """recipes/privacy_frontier.yaml as its header says to run it (on the light cohort, at one epsilon): one row per epsilon, site and
    model, each DP row with the epsilon its site spent, never above the target, and the audit's leakage beside it."""
    from tests.conftest import light_overrides
    from workbench.recipe import load_recipe
    from workbench.sweep import run_sweep

    path = Path(__file__).parents[1] / "recipes" / "privacy_frontier.yaml"
    assert "--sweep 'steps[fl_dp].params.dp.epsilon=0.5,1,2,4,8'" in path.read_text()
    result = run_sweep(path, Sweep.parse("steps[fl_dp].params.dp.epsilon=1"), tmp_path / "frontier", overrides=light_overrides(load_recipe(path)))
    assert not result.failed
    rows = {(row["variant"], row["site"], row["model"]): row for row in result.rows}
    sites = {"general_hospital", "county_hospital", "trauma_center"}
    assert {key[1] for key in rows} == sites and {key[2] for key in rows} == {"federated", "federated_dp"}
    for epsilon in (1,):  # one value keeps the test light; the sweep of several values is tested above
        for site in sites:
            private, plain = rows[f"epsilon={epsilon}", site, "federated_dp"], rows[f"epsilon={epsilon}", site, "federated"]
            assert epsilon * 0.99 < private["dp_epsilon"] <= epsilon and "dp_epsilon" not in plain
            assert private["attack_tpr_at_1pct_fpr"] is not None and private["auc"] is not None
    page = result.page.read_text()
    assert "Held-out AUC against epsilon" in page and "Utility against measured leakage" in page
