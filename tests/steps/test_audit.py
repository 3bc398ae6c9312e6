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
approvals: not_required
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
    params: {{label: y, features: {{numeric: {NOISE}}}, model: *mlp, dp: {{epsilon: 1, delta: 1e-3, steps: 300, noise: seeded}}, save_as: memorised_dp}}
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
    """Plain, secure and CKKS aggregation give the same model to their precision; with the same reference models and
    resamples for every model, the audit must not tell them apart either."""
    audit = flagship_run.metrics["steps"]["audit"]
    assert set(audit) == {"general_hospital", "county_hospital", "trauma_center"}
    for site, models in audit.items():
        assert set(models) == {"local", "federated", "federated_dp", "federated_secagg", "federated_ckks", "federated_key_holder", "pooled"}
        for attack in ("loss", "rmia"):
            aucs = [models[name][attack]["auc"]["value"] for name in ("federated", "federated_secagg", "federated_ckks", "federated_key_holder")]
            assert max(aucs) - min(aucs) < 1e-3, (site, attack, aucs)
    assert "Membership inference per site and model" in (flagship_run.out_dir / "report.html").read_text()


# Update leakage: what the aggregator reconstructs from what it read of round 1.


@pytest.fixture(scope="module")
def federated_sites(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A hospital with a single training row (its update is that row's gradient) beside one with 400, trained together by
    full-batch FedAvg under plain updates and under CKKS with either custody, then audited at both."""
    folder = tmp_path_factory.mktemp("update_leakage")
    rng = np.random.default_rng(3)
    _site(folder / "single.csv", rng, train=1, held_out=300, features=4)
    _site(folder / "many.csv", rng, train=400, held_out=300, features=4)
    recipe = f"""
name: update_leakage
approvals: not_required
seed: 2
datasets: {{single: {{kind: file, path: single.csv}}, many: {{kind: file, path: many.csv}}}}
parties:
  single: {{role: hospital, data: {{dataset: single}}}}
  many: {{role: hospital, data: {{dataset: many}}}}
  aggregator: {{role: aggregator}}
  key_holder: {{role: key_holder}}
steps:
  - kind: fl_train
    params: &fl {{label: y, features: {{numeric: {NOISE[:4]}}}, rounds: 2, batch_size: null, learning_rate: 0.5}}
  - {{kind: ckks_keys, name: keys_clients, at: [single, many, aggregator], params: {{custody: clients}}}}
  - {{kind: fl_train, name: fl_ckks, at: [single, many, aggregator], params: {{<<: *fl, aggregation: ckks, save_as: federated_ckks}}}}
  - {{kind: ckks_keys, name: keys_key_holder, params: {{custody: key_holder}}}}
  - {{kind: fl_train, name: fl_key_holder, params: {{<<: *fl, aggregation: ckks, save_as: federated_key_holder}}}}
  - {{kind: audit, at: [single, many], params: {{label: y, models: [federated, federated_ckks, federated_key_holder], resamples: 20}}}}
"""
    return run_recipe(parse_recipe(recipe, base_dir=folder), folder / "run", base_dir=folder)


def _leak(run: RunResult, site: str, model: str) -> dict[str, Any]:
    leak: dict[str, Any] = run.metrics["steps"]["audit"][site][model]["update_leakage"]
    return leak


def test_the_aggregator_recovers_a_lone_training_row_from_its_plain_update_and_nothing_from_400(federated_sites: RunResult) -> None:
    single, many = _leak(federated_sites, "single", "federated"), _leak(federated_sites, "many", "federated")
    assert single["read"] == "each site's update" and single["attacked"] and single["local_steps"] == 1
    assert (single["records"], single["recovered"], single["share"], single["tolerance"]) == (1, 1, 1.0, 0.01)
    assert single["by_attack"]["ratio"] == 1
    assert (many["records"], many["recovered"], many["share"]) == (400, 0, 0.0), many


def test_under_ckks_the_aggregator_read_no_update_and_the_attack_on_what_it_read_recovers_nothing(federated_sites: RunResult) -> None:
    for site in ("single", "many"):
        clients, holder = _leak(federated_sites, site, "federated_ckks"), _leak(federated_sites, site, "federated_key_holder")
        assert clients["read"].startswith("ciphertexts only") and not clients["attacked"] and clients["recovered"] == 0
        assert holder["read"].startswith("the weighted average") and holder["attacked"], holder  # the average is attacked
        assert holder["recovered"] == 0 and holder["share"] == 0.0, (site, holder)
    report = (federated_sites.out_dir / "report.html").read_text()
    assert "Training records the aggregator recovered from round 1" in report and "ciphertexts only" in report


def test_the_replayed_first_updates_are_what_the_aggregator_averaged(federated_sites: RunResult) -> None:
    """The sites' replays, weighted by their rows, equal the round-1 global model the aggregator kept: the attack runs on
    the update that was sent, not on a re-implementation of training. A replay one row or one draw off would miss."""
    from workbench.data.splits import split_part
    from workbench.fl.plan import training_key
    from workbench.fl.replay import first_round
    from workbench.models import model_key
    from workbench.models.features import TableRef, design_matrix, label_vector

    updates, rows = [], []
    for site in ("single", "many"):
        store = federated_sites.stores[site]
        training, model = store.get(training_key("federated")), store.get(model_key("federated"))
        members = split_part(store.table("data"), TableRef(site, "data"), test=False)
        X, y = design_matrix(members, training.plan.features, TableRef(site, "data")), label_vector(members, "y", TableRef(site, "data"))
        view = first_round(training, model.standardizer, X, y, site).view
        assert view is not None
        updates.append(view.end)
        rows.append(len(y))
    average = np.average(updates, axis=0, weights=rows)
    np.testing.assert_allclose(average, training.first_global, rtol=0, atol=1e-12)
    ledger = [m for m in federated_sites.ledger.messages if m.step == "audit"]
    assert ledger and not any(m.row_level for m in ledger) and {m.receiver for m in ledger} == {"coordinator"}
