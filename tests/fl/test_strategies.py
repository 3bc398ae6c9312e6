"""Flower's own server strategies behind `strategy:`, under the study's sampling and quorum rules and any aggregation kind."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import flwr.serverapp.strategy as flower
import numpy as np
import pytest

from tests.conftest import uci_recipe
from tests.fl.test_runtimes import _run_with_failure
from workbench.fl.accounting_grid import Transfer
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_embedded
from workbench.fl.strategies import STRATEGIES, StrategyName
from workbench.fl.strategy import StudyRules, build_strategy
from workbench.models import model_key
from workbench.recipe import parse_recipe
from workbench.recipe_problems import RecipeError
from workbench.runner import RunError, RunResult, run_recipe


def test_every_strategy_is_flowers_own_with_the_keywords_it_is_given() -> None:
    assert set(get_args(StrategyName)) == set(STRATEGIES)
    for name, spec in STRATEGIES.items():
        strategy = getattr(flower, spec.flower)
        assert issubclass(strategy, flower.FedAvg), name
        assert set(spec.takes.values()) <= set(inspect.signature(strategy.__init__).parameters), name


def test_the_study_rules_go_in_front_of_flowers_strategy(make_plan: Callable[..., FLPlan]) -> None:
    plan = make_plan(strategy="fedadam", server_learning_rate=0.05, tau=0.01)
    strategy = build_strategy(plan, None, lambda r, m: None, lambda replies, step: (None, None), lambda r, sites: {})  # type: ignore[arg-type]
    assert type(strategy).__mro__[1:3] == (StudyRules, flower.FedAdam)
    assert (strategy.eta, strategy.tau, strategy.beta_1) == (0.05, 0.01, 0.9), "unset parameters keep Flower's defaults"


def test_every_strategy_samples_the_same_sites_with_the_seed(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    def trained(plan: FLPlan) -> list[str]:
        transfers: list[Transfer] = []
        run_embedded(plan, site_configs, lambda r, m: None, transfers.append)
        return [t.receiver for t in transfers if t.kind == "fl.model"]

    plain = trained(make_plan(fraction_train=0.5, min_available_clients=1))
    assert len(set(plain)) == 3 and len(plain) == 5 * (2 + 3), "two sites train each round, all three evaluate"
    for changes in ({"strategy": "fedavgm", "server_momentum": 0.5}, {"strategy": "fedyogi"}, {"strategy": "fedprox", "proximal_mu": 0.1}):
        assert trained(make_plan(fraction_train=0.5, min_available_clients=1, **changes)) == plain, changes


def test_a_site_that_dies_under_fedadam_fails_the_run_naming_it(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    with pytest.raises(FederationError, match="round 3: site\\(s\\) mid disconnected; 2 remain"):
        _run_with_failure(site_configs, make_plan(strategy="fedadam"), stop_after_round=2, site="mid")


STRATEGIES_RECIPE = uci_recipe(
    "strategies",
    """\
  - kind: fl_train
    name: fedavg
    params: &fl {label: heart_disease, features: {numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak, exang]},
                 rounds: 10, batch_size: null, learning_rate: 0.5}
  - kind: fl_train
    name: fedadam
    params: {<<: *fl, strategy: fedadam, server_learning_rate: 0.05, save_as: federated_adam}
  - kind: fl_train
    name: fedavgm
    params: {<<: *fl, strategy: fedavgm, server_momentum: 0.5, save_as: federated_avgm}
  - {kind: ckks_keys, params: {custody: key_holder}}
  - kind: fl_train
    name: fedadam_key_holder
    params: {<<: *fl, strategy: fedadam, server_learning_rate: 0.05, aggregation: ckks, save_as: federated_adam_ckks}
  - {kind: evaluate, params: {label: heart_disease, models: [federated, federated_adam, federated_avgm, federated_adam_ckks]}}
""",
    ("cleveland", "hungary", "va_long_beach"),
    key_holder=True,
)
SITES = ("cleveland", "hungary", "va_long_beach")


@pytest.fixture(scope="module")
def strategies_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_recipe(parse_recipe(STRATEGIES_RECIPE), tmp_path_factory.mktemp("strategies") / "run")


def test_fedadam_and_fedavgm_train_a_model_of_their_own(strategies_run: RunResult) -> None:
    scores = strategies_run.metrics["steps"]["evaluate"]
    for model in ("federated_adam", "federated_avgm"):
        assert all(scores[site][model]["auc"] > 0.6 for site in SITES), model
        for site in SITES:
            held, fedavg = (strategies_run.stores[site].get(model_key(name)).params for name in (model, "federated"))
            assert np.abs(held - fedavg).max() > 0.01, (site, model, "Flower's server step moved the model")
    assert strategies_run.metrics["steps"]["fedadam"]["aggregator"]["strategy_parameters"] == {"server_learning_rate": 0.05}
    assert "strategy: fedadam (server_learning_rate 0.05)" in (strategies_run.out_dir / "report.html").read_text()


def test_fedadam_steps_from_the_aggregate_the_key_holder_decrypted(strategies_run: RunResult) -> None:
    """Under custody key_holder the aggregator reads the average (never an update), so FedAdam runs, equal to plain FedAdam.

    Equal up to CKKS: the masked decryption is off by ~1e-7 per value, and Adam divides the step by the root of its
    second moment, which magnifies that error where a coordinate's pseudo-gradient is small (1.3e-6 seen on CI, from
    masks drawn from OS randomness). A FedAdam that did not step from the decrypted average differs by over 1e-2.
    """
    for site in SITES:
        plain, encrypted = (strategies_run.stores[site].get(model_key(name)).params for name in ("federated_adam", "federated_adam_ckks"))
        assert np.abs(plain - encrypted).max() < 2e-5, site
    updates = [m for m in strategies_run.ledger.messages if m.step == "fedadam_key_holder" and m.kind == "fl.update"]
    assert len(updates) == 10 * len(SITES) and {m.protection.value for m in updates} == {"ckks"}


def test_a_server_step_under_custody_clients_is_refused_saying_why_by_validate_and_by_the_runner(tmp_path: Path) -> None:
    recipe = STRATEGIES_RECIPE.replace("custody: key_holder", "custody: clients")
    why = (
        "step 'fedadam_key_holder' .*strategy fedadam takes its server step from the average of the updates, so "
        "the aggregator must read that average; under aggregation ckks with custody clients it holds only the "
        "encrypted sum"
    )
    with pytest.raises(RecipeError, match=why):
        parse_recipe(recipe)
    with pytest.raises(RunError, match=why) as refused:
        run_recipe(parse_recipe(recipe, check_chain=False), tmp_path / "run")
    assert refused.value.user_error
    ledger = (tmp_path / "run" / "ledger.jsonl").read_text()
    assert '"step": "fedadam_key_holder"' not in ledger, "refused before any message"
