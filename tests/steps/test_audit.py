"""The audit is honest: it finds leakage where a model memorised its rows, and none where it could not have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from workbench.recipe import parse_recipe
from workbench.runner import RunResult, run_recipe
from workbench.steps.audit import Audit

NOISE = [f"x{i}" for i in range(40)]


def _site(path: Path, rng: np.random.Generator, train: int, held_out: int, features: int) -> None:
    """A site whose outcome depends on its first feature only; the rest are noise a flexible model can memorise."""
    n = train + held_out
    X = rng.normal(size=(n, features))
    y = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    frame = pl.DataFrame({name: X[:, i] for i, name in enumerate(NOISE[:features])})
    frame.with_columns(y=pl.Series(y), is_test=pl.Series([False] * train + [True] * held_out)).write_csv(path)


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """Positive control: an unregularised MLP on a small site with 40 features, trained to convergence. Negative
    controls: the same MLP trained by DP-SGD at epsilon 1, and a regularised logistic model on 3 features and many
    rows, which has nothing to memorise."""
    folder = tmp_path_factory.mktemp("audit")
    rng = np.random.default_rng(11)
    _site(folder / "small.csv", rng, train=150, held_out=3000, features=40)
    _site(folder / "large.csv", rng, train=4000, held_out=3000, features=3)
    recipe = f"""
name: audit_controls
seed: 5
datasets: {{small: {{kind: file, path: small.csv}}, large: {{kind: file, path: large.csv}}}}
parties:
  small: {{role: hospital, data: {{dataset: small}}}}
  large: {{role: hospital, data: {{dataset: large}}}}
steps:
  - kind: local_train
    at: [small]
    params: {{label: y, features: {{numeric: {NOISE}}}, model: &mlp {{family: mlp, hidden: 32, l2: 0.0}}, save_as: memorised}}
  - kind: local_train
    name: local_dp
    at: [small]
    params: {{label: y, features: {{numeric: {NOISE}}}, model: *mlp, dp: {{epsilon: 1, delta: 1e-3, steps: 300}}, save_as: memorised_dp}}
  - kind: local_train
    at: [large]
    params: {{label: y, features: {{numeric: [x0, x1, x2]}}, model: {{l2: 1.0}}, save_as: general}}
  - {{kind: audit, at: [small], params: {{label: y, models: [memorised, memorised_dp]}}}}
  - {{kind: audit, name: audit_general, at: [large], params: {{label: y, models: [general]}}}}
"""
    return run_recipe(parse_recipe(recipe, base_dir=folder), folder / "run", base_dir=folder)


def _figures(run: RunResult, step: str, site: str, model: str, attack: str) -> dict[str, Any]:
    figures: dict[str, Any] = run.metrics["steps"][step][site][model][attack]
    return figures


def test_a_memorising_model_leaks_clearly_above_chance_at_one_percent_fpr(controls: RunResult) -> None:
    """RMIA's interval at 1 % FPR excludes 1 %. LOSS separates members on average (high AUC) but finds few of them
    at a low FPR, where easy non-members score as high as members: the reason the audit runs a reference-model attack."""
    rmia, loss = (_figures(controls, "audit", "small", "memorised", attack) for attack in ("rmia", "loss"))
    assert rmia["tpr_at_fpr_0.01"]["interval"][0] > 0.01, rmia["tpr_at_fpr_0.01"]
    assert rmia["auc"]["interval"][0] > 0.6 and loss["auc"]["interval"][0] > 0.7
    assert rmia["tpr_at_fpr_0.01"]["value"] > loss["tpr_at_fpr_0.01"]["value"]
    assert rmia["members"] == 150 and rmia["nonmembers"] == 1500


def test_a_model_with_nothing_to_memorise_shows_attack_auc_of_one_half_within_its_interval(controls: RunResult) -> None:
    for attack in ("loss", "rmia"):
        auc = _figures(controls, "audit_general", "large", "general", attack)["auc"]
        low, high = auc["interval"]
        assert low <= 0.5 <= high and high - low < 0.1, (attack, auc)


def test_the_same_model_trained_at_epsilon_1_shows_attack_auc_of_one_half_within_its_interval(controls: RunResult) -> None:
    assert controls.metrics["steps"]["local_dp"]["small"]["dp"]["epsilon"] <= 1.0
    for attack in ("loss", "rmia"):
        figures = _figures(controls, "audit", "small", "memorised_dp", attack)
        low, high = figures["auc"]["interval"]
        assert low <= 0.5 <= high, (attack, figures["auc"])
        assert figures["tpr_at_fpr_0.01"]["interval"][0] <= 0.01, (attack, figures["tpr_at_fpr_0.01"])


def test_only_figures_leave_the_site_and_the_report_names_the_attacker(controls: RunResult) -> None:
    audits = [m for m in controls.ledger.messages if m.step in ("audit", "audit_general")]
    assert audits and not any(m.row_level for m in audits) and {m.receiver for m in audits} == {"coordinator"}
    report = (controls.out_dir / "report.html").read_text()
    assert "Who attacks, with what" in report and "RMIA ROC at small, log scale" in report
    assert Audit.headline(controls.metrics["steps"]["audit"]).startswith("highest attack AUC 0.")


def test_the_audit_repeats_from_the_seed(controls: RunResult, tmp_path: Path) -> None:
    folder = controls.out_dir.parent
    again = run_recipe(parse_recipe((controls.out_dir / "recipe.yaml").read_text(), base_dir=folder), tmp_path / "run", base_dir=folder)
    assert json.dumps(again.metrics["steps"]["audit"], sort_keys=True) == json.dumps(controls.metrics["steps"]["audit"], sort_keys=True)


def test_the_flagship_audits_every_model_and_models_equal_to_1e6_get_equal_figures(flagship_run: RunResult) -> None:
    """Plain and CKKS aggregation give the same model to CKKS precision; with the same reference models and resamples
    for every model, the audit must not tell them apart either."""
    audit = flagship_run.metrics["steps"]["audit"]
    assert set(audit) == {"general_hospital", "county_hospital", "trauma_center"}
    for site, models in audit.items():
        assert set(models) == {"local", "federated", "federated_dp", "federated_ckks", "federated_key_holder", "pooled"}
        for attack in ("loss", "rmia"):
            aucs = [models[name][attack]["auc"]["value"] for name in ("federated", "federated_ckks", "federated_key_holder")]
            assert max(aucs) - min(aucs) < 1e-3, (site, attack, aucs)
    assert "Membership inference per site and model" in (flagship_run.out_dir / "report.html").read_text()
