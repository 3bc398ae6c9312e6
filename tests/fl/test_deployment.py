"""The deployment runtime on loopback: real SuperLink, SuperNodes and ClientApp workers as processes."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workbench.fl.deployment import DeploymentSettings, LocalFederation, submit_and_follow, write_connection
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan
from workbench.recipe import load_recipe
from workbench.runner import run_recipe

RECIPE = Path(__file__).parents[2] / "recipes" / "uci_heart.yaml"


def _fl_step(recipe_path: Path) -> int:
    return next(i for i, step in enumerate(load_recipe(recipe_path).steps) if step.kind == "fl_train")


def test_same_recipe_same_metrics_on_embedded_and_deployment(tmp_path: Path) -> None:
    step = _fl_step(RECIPE)
    runs = {}
    for runtime in ("embedded", "deployment"):
        recipe = load_recipe(RECIPE, [f"steps[{step}].params.runtime={runtime}", f"steps[{step}].params.rounds=5"])
        runs[runtime] = run_recipe(recipe, tmp_path / runtime)
    embedded, deployed = (runs[r].metrics["steps"] for r in ("embedded", "deployment"))
    for site, scores in embedded["evaluate"].items():
        for metric in ("auc", "accuracy", "brier"):
            assert deployed["evaluate"][site]["federated"][metric] == pytest.approx(scores["federated"][metric], abs=1e-6)
    for site in ("cleveland", "switzerland"):
        a, b = (runs[r].stores[site].get("model/federated").params for r in ("embedded", "deployment"))
        assert abs(a - b).max() < 1e-6
    kinds = lambda result: sorted((m.sender, m.receiver, m.kind) for m in result.ledger.messages if m.step == "fl_train")  # noqa: E731
    assert kinds(runs["deployment"]) == kinds(runs["embedded"])


def _federation_run(site_configs: list[dict[str, Any]], plan: FLPlan, tmp_path: Path,
                    on_round: Callable[[LocalFederation, int], None]) -> tuple[Any, LocalFederation]:
    with LocalFederation(site_configs, tmp_path, poll=0.1) as federation:
        write_connection(tmp_path / "flwr-home", federation.address, DeploymentSettings(), local=True)
        outcome = submit_and_follow(plan, federation.env, tmp_path / "out.jsonl", lambda r, m: on_round(federation, r))
    return outcome, federation


def _kill_after_round_2(site: str, sig: int) -> Callable[[LocalFederation, int], None]:
    def on_round(federation: LocalFederation, server_round: int) -> None:
        if server_round == 2:
            federation.stop_site(site, sig)

    return on_round


def test_a_supernode_that_dies_fails_the_run_naming_the_site(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan],
                                                             tmp_path: Path) -> None:
    plan = make_plan(rounds=6, node_timeout=8.0)
    with pytest.raises(FederationError, match="round [34].*\\bmid\\b") as caught:
        _federation_run(site_configs, plan, tmp_path, _kill_after_round_2("mid", signal.SIGKILL))
    assert "min_available_clients=3" in str(caught.value)


def test_the_run_goes_on_without_a_dead_site_when_the_recipe_allows(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan],
                                                                   tmp_path: Path) -> None:
    plan = make_plan(rounds=5, node_timeout=8.0, min_available_clients=2)
    outcome, federation = _federation_run(site_configs, plan, tmp_path, _kill_after_round_2("small", signal.SIGTERM))
    assert set(outcome.history[2]) == {"big", "mid", "small"}
    assert set(outcome.history[5]) == {"big", "mid"}
    assert all("small" in outcome.dropped[r] for r in (3, 4, 5))
    assert all(process.poll() is not None for process in federation.processes()) and not federation.sites


def test_no_process_is_left_behind(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], tmp_path: Path) -> None:
    with LocalFederation(site_configs, tmp_path, poll=0.1) as federation:
        started = federation.processes()
        assert len(started) == 1 + 2 * len(site_configs) and all(p.poll() is None for p in started)
    assert all(p.poll() is not None for p in started)
    logged = json.dumps(sorted(path.name for path in (tmp_path / "logs").iterdir()))
    assert "supernode-small.log" in logged and "clientapp-small.log" in logged
