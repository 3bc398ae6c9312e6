"""Federated training in the flagship: the done-when figures, the ledger, and parameter checks."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from tests.conftest import uci_recipe
from workbench.fl import runtimes
from workbench.models import model_key
from workbench.privacy.dp_params import DPParams
from workbench.privacy.dp_sgd import epsilon
from workbench.recipe import parse_recipe
from workbench.recipe_problems import RecipeError
from workbench.runner import RunError, RunResult, run_recipe
from workbench.steps.fl_train import FLTrainParams

SITES = ("general_hospital", "county_hospital", "trauma_center")


def test_federated_model_is_within_a_hundredth_of_pooled_at_every_site(flagship_run: RunResult) -> None:
    scores = flagship_run.metrics["steps"]["evaluate"]
    for site in SITES:
        assert abs(scores[site]["federated"]["auc"] - scores[site]["pooled"]["auc"]) <= 0.01, site


def test_smallest_site_beats_its_local_model(flagship_run: RunResult) -> None:
    scores = flagship_run.metrics["steps"]["evaluate"]
    smallest = min(SITES, key=lambda site: scores[site]["local"]["n"])
    assert smallest == "trauma_center"
    assert scores[smallest]["federated"]["auc"] > scores[smallest]["local"]["auc"]


def test_every_site_holds_the_same_federated_model(flagship_run: RunResult) -> None:
    models = [flagship_run.stores[site].get(model_key("federated")) for site in SITES]
    assert all((m.params == models[0].params).all() for m in models)


def test_every_update_and_broadcast_is_in_the_ledger(flagship_run: RunResult, flagship) -> None:  # noqa: ANN001
    name, spec = next((n, s) for n, s in zip(flagship.step_names(), flagship.steps) if s.kind == "fl_train" and s.params.aggregation == "none")
    rounds = spec.params.rounds
    fl = [m for m in flagship_run.ledger.messages if m.step == name]
    kinds = [m.kind for m in fl]
    assert kinds.count("fl.update") == kinds.count("fl.eval_metrics") == rounds * len(SITES)
    assert kinds.count("fl.model") == 2 * rounds * len(SITES)
    assert {m.protection.value for m in fl} == {"none"} and not any(m.row_level for m in fl)
    assert {(m.sender, m.receiver) for m in fl if m.kind == "fl.update"} == {(site, "aggregator") for site in SITES}


def test_report_says_plainly_that_updates_were_unprotected(flagship_run: RunResult) -> None:
    html = (flagship_run.out_dir / "report.html").read_text()
    assert "Model updates travelled in the clear (protection: none)" in html
    assert "Federated held-out AUC per round" in html


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"strategy": "fedprox"}, "proximal_mu", "fedprox needs proximal_mu > 0"),
        ({"proximal_mu": 0.1}, "proximal_mu", "proximal_mu is a parameter of fedprox; strategy fedavg does not take it .set strategy: fedprox"),
        ({"strategy": "fedadam", "server_momentum": 0.9}, "server_momentum", "server_momentum is a parameter of fedavgm; strategy fedadam"),
        ({"strategy": "fedavgm", "tau": 0.01}, "tau", "tau is a parameter of fedadagrad, fedadam, fedyogi; .*set strategy: fedadagrad or fedadam or fedyogi"),
        ({"strategy": "fedadagrad", "beta_1": 0.9}, "beta_1", "beta_1 is a parameter of fedadam, fedyogi; strategy fedadagrad"),
        ({"strategy": "fedadam", "beta_2": 1.0}, "beta_2", "less than 1"),
        ({"strategy": "fedyogi", "server_learning_rate": 0}, "server_learning_rate", "greater than 0"),
        ({"strategy": "fedsgd"}, "strategy", "fedavg.*fedyogi"),
        ({"runtime": "cloud"}, "runtime", "runtime|embedded"),
        (
            {"aggregation": "ckks", "dp": {"level": "client", "epsilon": 1}},
            "dp",
            "dp.level client cannot run under aggregation ckks: client-level DP has the aggregator clip each site's update.*Use dp.level: sample",
        ),
        ({"strategy": "fedadam", "dp": {"level": "client", "epsilon": 1}}, "dp", "strategy fedadam takes its server step .*use strategy fedavg or fedprox"),
        ({"dp": {"level": "client", "epsilon": 1, "sample_rate": 0.5}}, "dp", "at level client the sites sampled each round are fraction_train's"),
    ],
)
def test_bad_parameters_are_named(changes: dict[str, object], field: str, message: str) -> None:
    base = {"label": "y", "features": {"numeric": ["x"]}}
    with pytest.raises(ValidationError, match=message) as refused:
        FLTrainParams.model_validate({**base, **changes})
    assert [error["loc"] for error in refused.value.errors()] == [(field,)], "the error points at the field at fault"


def test_client_level_dp_runs_with_plain_updates_under_fedavg_and_fedprox() -> None:
    base = {"label": "y", "features": {"numeric": ["x"]}, "dp": {"level": "client", "epsilon": 1}}
    for strategy in ({}, {"strategy": "fedprox", "proximal_mu": 0.01}):
        params = FLTrainParams.model_validate({**base, **strategy})
        assert params.plan("aggregator", ["a", "b"], 1).client_dp == params.dp and params.plan("aggregator", ["a", "b"], 1).sample_dp is None
    assert FLTrainParams.model_validate({**base, "dp": {"epsilon": 1}}).dp == DPParams(epsilon=1, level="sample"), "sample level is the default"


def test_validate_refuses_client_level_dp_under_ckks_at_the_field_saying_what_to_use() -> None:
    recipe = UCI_CKKS.replace("aggregation: ckks}", "aggregation: ckks, dp: {level: client, epsilon: 1}}")
    with pytest.raises(RecipeError, match=r"steps\[2\]\.params\.dp: .*never reads an update.*Use dp\.level: sample, which runs under CKKS"):
        parse_recipe(recipe)


def test_each_strategy_takes_its_parameters() -> None:
    base = {"label": "y", "features": {"numeric": ["x"]}}
    adam = FLTrainParams.model_validate({**base, "strategy": "fedadam", "server_learning_rate": 0.05, "beta_1": 0.8})
    assert adam.flower_arguments() == {"eta": 0.05, "beta_1": 0.8}, "Flower's names; what is left unset takes Flower's default"
    momentum = FLTrainParams.model_validate({**base, "strategy": "fedavgm", "server_learning_rate": 0.5, "server_momentum": 0.9})
    assert momentum.flower_arguments() == {"server_learning_rate": 0.5, "server_momentum": 0.9}
    assert FLTrainParams.model_validate({**base, "strategy": "fedprox", "proximal_mu": 0.01}).flower_arguments() == {"proximal_mu": 0.01}


UCI_CKKS = uci_recipe(
    "uci_private_files",
    """\
  - {kind: ckks_keys, params: {custody: clients}}
  - kind: fl_train
    params: {label: heart_disease, features: {numeric: [age, chol]}, rounds: 2, aggregation: ckks}
""",
)


def test_a_site_file_holds_only_what_training_reads_and_only_its_owner_can_read_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21: site files held the whole table (identifiers included) with mode 0644; secret contexts too."""
    seen: list[dict[str, object]] = []

    def inspecting(runtime: str, plan: object, node_configs: list[dict[str, str]], *args: object) -> object:
        for config in node_configs:
            data, key = Path(config["data-path"]), Path(config["ckks-context-path"])
            seen.append(
                {
                    "columns": pl.read_parquet(data).columns,
                    "modes": {stat.S_IMODE(p.stat().st_mode) for p in (data, key)},
                    "folder": stat.S_IMODE(data.parent.parent.stat().st_mode),
                    "path": data,
                }
            )
        return run_federated(runtime, plan, node_configs, *args)

    run_federated = runtimes.run_federated
    monkeypatch.setattr(runtimes, "run_federated", inspecting)
    run_recipe(parse_recipe(UCI_CKKS), tmp_path / "run")
    assert [s["columns"] for s in seen] == [["age", "chol", "heart_disease", "is_test"]] * 2
    assert all(s["modes"] == {0o600} and s["folder"] == 0o700 for s in seen)
    assert not any(Path(str(s["path"])).exists() for s in seen), "removed after training"


def test_a_site_whose_held_out_rows_have_one_class_trains_and_reports_its_auc_as_undefined(tmp_path: Path) -> None:
    """Issue 10: Flower refused to aggregate when one site's evaluation had no AUC ("All MetricRecords must have the same keys")."""
    rng = np.random.default_rng(0)
    for site, test_labels in (("a", [0, 1] * 10), ("b", [0] * 20)):
        x = rng.normal(size=80)
        train_labels = (x[:60] > 0).astype(int).tolist()
        pl.DataFrame({"x": x, "y": train_labels + test_labels, "is_test": [False] * 60 + [True] * 20}).write_csv(tmp_path / f"{site}.csv")
    recipe = (
        "name: one_class\nseed: 1\napprovals: not_required\ndatasets: {a: {kind: file, path: a.csv}, b: {kind: file, path: b.csv}}\n"
        "parties: {a: {role: hospital, data: {dataset: a}}, b: {role: hospital, data: {dataset: b}}, aggregator: {role: aggregator}}\n"
        "steps:\n  - {kind: fl_train, params: {label: y, features: {numeric: [x]}, rounds: 2, save_as: m}}\n"
    )
    result = run_recipe(parse_recipe(recipe, base_dir=tmp_path), tmp_path / "run", base_dir=tmp_path)
    last = json.loads((result.out_dir / "metrics.json").read_text())["steps"]["fl_train"]["aggregator"]["rounds"]["2"]
    assert last["a"]["auc"] is not None and last["b"]["auc"] is None and last["b"]["eval-loss"] > 0
    assert "AUC is undefined at b: the held-out rows there hold a single class" in (result.out_dir / "report.html").read_text()


DP_SITES = ("cleveland", "hungary", "va_long_beach")
DP_RECIPE = uci_recipe(
    "fl_dp",
    """\
  - kind: fl_train
    params: &fl {label: heart_disease, features: {numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak, exang]},
                 rounds: 20, batch_size: 64, learning_rate: 0.5}
  - kind: fl_train
    name: fl_dp
    params: {<<: *fl, dp: {epsilon: 2, delta: 1e-4, clip: 1.0}, save_as: federated_dp}
  - kind: fl_train
    name: fl_client_dp
    params: {<<: *fl, dp: {level: client, epsilon: 2, delta: 1e-4, clip: 1.0}, save_as: federated_client_dp}
  - {kind: evaluate, params: {label: heart_disease, models: [federated, federated_dp, federated_client_dp]}}
""",
    DP_SITES,
)


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_recipe(parse_recipe(DP_RECIPE), tmp_path_factory.mktemp("fl_dp") / "run")


def test_each_site_trains_by_dp_sgd_within_its_budget_and_states_what_it_spent(dp_run: RunResult) -> None:
    spent = dp_run.metrics["steps"]["fl_dp"]["aggregator"]["dp"]
    assert set(spent) == set(DP_SITES)
    for site, figures in spent.items():
        assert 2.0 * 0.99 < figures["epsilon"] <= 2.0, site  # calibrated at the site, to its own rows
        assert figures["rounds"] == 20 and figures["steps"] % 20 == 0 and figures["delta"] == 1e-4
    small, large = (spent[site] for site in ("va_long_beach", "cleveland"))
    assert small["sample_rate"] > large["sample_rate"] and small["noise_multiplier"] > large["noise_multiplier"]
    manifest = dp_run.manifest["steps"]["fl_dp"]["dp"]
    assert {site: {k: v for k, v in figures.items() if k != "noise_seed"} for site, figures in manifest.items()} == spent
    assert "fresh at 'cleveland'" in manifest["cleveland"]["noise_seed"], "secret noise by default: no party can recompute it"


def test_a_dp_model_differs_from_the_plain_one_and_still_learns(dp_run: RunResult) -> None:
    scores = dp_run.metrics["steps"]["evaluate"]
    for site in DP_SITES:
        plain, private = (dp_run.stores[site].get(model_key(name)).params for name in ("federated", "federated_dp"))
        assert np.abs(plain - private).max() > 1e-3, site
        assert scores[site]["federated_dp"]["auc"] > 0.7, site


def test_under_dp_the_training_loss_stays_at_the_site_and_epsilon_is_shown_per_round(dp_run: RunResult) -> None:
    rounds = dp_run.metrics["steps"]["fl_dp"]["aggregator"]["rounds"]
    assert all("train-loss" not in metrics for sites in rounds.values() for metrics in sites.values())
    assert all("train-loss" in metrics for sites in dp_run.metrics["steps"]["fl_train"]["aggregator"]["rounds"].values() for metrics in sites.values())
    events = [json.loads(line) for line in (dp_run.out_dir / "events.jsonl").read_text().splitlines()]
    epsilons = [e for e in events if e["type"] == "metric" and e["name"] == "epsilon" and e["party"] == "cleveland"]
    assert [e["round"] for e in epsilons] == list(range(1, 21))
    assert all(a["value"] < b["value"] for a, b in zip(epsilons, epsilons[1:]))
    html = (dp_run.out_dir / "report.html").read_text()
    assert "Differential privacy spent, per site (sample level)" in html and "It does not cover the standardization" in html


def test_a_fixed_noise_over_budget_stops_the_run_before_the_round_that_would_exceed_it_naming_the_site(tmp_path: Path) -> None:
    recipe = parse_recipe(DP_RECIPE, overrides=["steps[2].params.dp={epsilon: 1, noise_multiplier: 2, delta: 1e-4}"])
    with pytest.raises(RunError, match=r"site 'va_long_beach': training round \d+ would bring its epsilon to 1\.\d+ .*over the budget epsilon 1"):
        run_recipe(recipe, tmp_path / "run")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and status["step"] == "fl_dp"


def test_client_level_dp_is_the_aggregators_one_account_and_equals_the_accountants_figure(dp_run: RunResult) -> None:
    summary = dp_run.metrics["steps"]["fl_client_dp"]["aggregator"]
    spent = summary["dp"]
    assert spent["level"] == "client" and 2.0 * 0.99 < spent["epsilon"] <= 2.0
    assert (spent["rounds"], spent["sites"], spent["sites_per_round"], spent["sample_rate"], spent["clip"]) == (20, 3, 3, 1.0, 1.0)
    assert spent["epsilon"] == epsilon(spent["noise_multiplier"], spent["sample_rate"], spent["rounds"], spent["delta"])
    assert spent["noise_std"] == pytest.approx(spent["noise_multiplier"] * spent["clip"] / 3)
    assert all("dp-epsilon" not in metrics for sites in summary["rounds"].values() for metrics in sites.values()), "no site keeps an account"
    assert {k: v for k, v in dp_run.manifest["steps"]["fl_client_dp"]["dp"].items() if k != "noise_seed"} == spent
    assert "unseeded" in dp_run.manifest["steps"]["fl_client_dp"]["dp"]["noise_seed"]
    html = (dp_run.out_dir / "report.html").read_text()
    assert "Differential privacy spent, client level" in html and "covers each site&#39;s whole participation" in html
    assert "it suits federations of hundreds of sites" in html


def test_on_three_sites_client_level_noise_dwarfs_sample_level_noise_at_the_same_epsilon(dp_run: RunResult) -> None:
    """Client level adds sigma * C / 3 to every coordinate of the average each round; sample level's noise on the average
    is each site's DP-SGD noise over its steps, lr * sigma * C * sqrt(steps) / (q n), averaged with weights n / N."""
    steps = dp_run.metrics["steps"]
    client = steps["fl_client_dp"]["aggregator"]["dp"]
    sample = steps["fl_dp"]["aggregator"]["dp"]
    rows = {site: 64 / f["sample_rate"] for site, f in sample.items()}  # q = batch_size / rows
    per_site = {site: 0.5 * f["noise_multiplier"] * f["clip"] * np.sqrt(f["steps"] / f["rounds"]) / 64 for site, f in sample.items()}
    on_average = np.sqrt(sum((rows[s] / sum(rows.values())) ** 2 * per_site[s] ** 2 for s in sample))
    assert client["noise_std"] > 20 * on_average  # 2.82 against 0.050 on these sites
    for site in DP_SITES:  # so the model moves far further from plain FedAvg's under client level than under sample level
        plain, private, client_model = (dp_run.stores[site].get(model_key(name)).params for name in ("federated", "federated_dp", "federated_client_dp"))
        assert np.abs(client_model - plain).max() > 5 * np.abs(private - plain).max(), site
    print({model: {s: round(steps["evaluate"][s][model]["auc"], 3) for s in DP_SITES} for model in ("federated", "federated_dp", "federated_client_dp")})


def test_with_public_bounds_the_sites_send_no_moments_of_their_rows_and_the_report_says_the_scaling_is_covered(tmp_path: Path) -> None:
    bounds = {"age": [18, 100], "sex_male": [0, 1], "thalch": [50, 220], "oldpeak": [-3, 7]}
    recipe = uci_recipe(
        "public_scaling",
        f"""\
  - kind: fl_train
    params: {{label: heart_disease, features: {{numeric: {list(bounds)}, bounds: {bounds}}}, rounds: 5, batch_size: null,
             learning_rate: 1.0, dp: {{epsilon: 2, delta: 1e-3}}}}
""".replace("'", ""),
        DP_SITES,
    )
    run = run_recipe(parse_recipe(recipe), tmp_path / "run")
    for site in DP_SITES:
        scaler = run.stores[site].get(model_key("federated")).standardizer
        assert np.allclose(scaler.center, [59.0, 0.5, 135.0, 2.0], atol=1e-9) and np.allclose(scaler.scale, [41.0, 0.5, 85.0, 5.0], atol=1e-9)
    spent = run.metrics["steps"]["fl_train"]["aggregator"]["dp"]
    assert {figures["scaling"] for figures in spent.values()} == {"public bounds"}
    assert "scaled by public bounds, so the scaling read no row and is covered too" in (run.out_dir / "report.html").read_text()


def test_training_that_diverges_stops_naming_round_site_and_what_to_lower(tmp_path: Path) -> None:
    """It used to end as an internal error when the infinite loss reached metrics.json."""
    recipe = parse_recipe(
        uci_recipe(
            "diverges",
            "  - {kind: fl_train, params: {label: heart_disease, features: {numeric: [age, chol]}, rounds: 100, "
            "batch_size: null, learning_rate: 1.0, model: {l2: 10000}}}\n",
        )
    )
    with pytest.raises(
        RunError, match=r"training diverged: .* at '(cleveland|hungary)' is (inf|nan) in round \d+\. Lower learning_rate \(1\) or the model's l2 \(10000\)"
    ) as error:
        run_recipe(recipe, tmp_path / "run")
    assert error.value.user_error
