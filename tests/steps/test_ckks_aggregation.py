"""Encrypted aggregation in a whole run: same model as plain FedAvg, and the aggregator never holds a key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from workbench.crypto import ckks
from workbench.models import model_key
from workbench.recipe import Recipe, parse_recipe
from workbench.runner import RunResult, run_recipe

FLAGSHIP = Path(__file__).parents[2] / "recipes" / "flagship.yaml"


def with_ckks(rounds: int) -> tuple[Recipe, Recipe]:
    """The flagship with fewer rounds, plain and with a ckks_keys step and encrypted aggregation."""
    raw = yaml.safe_load(FLAGSHIP.read_text())
    index = next(i for i, step in enumerate(raw["steps"]) if step["kind"] == "fl_train")
    raw["steps"][index]["params"]["rounds"] = rounds
    plain = parse_recipe(yaml.safe_dump(raw))
    raw["steps"].insert(index, {"kind": "ckks_keys", "params": {"custody": "clients"}})
    raw["steps"][index + 1]["params"]["aggregation"] = "ckks"
    return plain, parse_recipe(yaml.safe_dump(raw))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, RunResult]:
    plain, encrypted = with_ckks(rounds=15)
    folder = tmp_path_factory.mktemp("ckks")
    return run_recipe(plain, folder / "plain"), run_recipe(encrypted, folder / "ckks")


def test_encrypted_fedavg_equals_plain_fedavg(runs: tuple[RunResult, RunResult]) -> None:
    plain, encrypted = runs
    for site in ("general_hospital", "trauma_center"):
        a, b = (run.stores[site].get(model_key("federated")) for run in runs)
        assert np.abs(a.params - b.params).max() < 1e-6
    for site, scores in plain.metrics["steps"]["evaluate"].items():
        for metric in ("auc", "brier", "accuracy"):
            assert encrypted.metrics["steps"]["evaluate"][site]["federated"][metric] == pytest.approx(scores["federated"][metric], abs=1e-4)


def test_every_update_is_ckks_protected(runs: tuple[RunResult, RunResult]) -> None:
    _, encrypted = runs
    updates = [m for m in encrypted.ledger.messages if m.kind == "fl.update"]
    assert updates and {m.protection.value for m in updates} == {"ckks"}
    broadcasts = [m for m in encrypted.ledger.messages if m.kind == "fl.model"]
    assert {m.protection.value for m in broadcasts[3:]} == {"ckks"}, "after the public initial model, only the encrypted aggregate"


def test_custody_clients_gives_the_aggregator_no_secret_key(runs: tuple[RunResult, RunResult]) -> None:
    _, encrypted = runs
    context = ckks.load_context(encrypted.stores["aggregator"].get(ckks.AGGREGATOR_ITEM))
    assert not context.is_private()
    assert not encrypted.stores["aggregator"].has(ckks.SECRET_ITEM)
    assert all(ckks.load_context(encrypted.stores[s].get(ckks.SECRET_ITEM)).is_private()
               for s in ("general_hospital", "county_hospital", "trauma_center"))
    keys = encrypted.manifest["steps"]["ckks_keys"]
    assert keys["custody"] == "clients" and len(keys["aggregator_context_sha256"]) == 64


def test_report_states_what_stayed_in_the_clear(runs: tuple[RunResult, RunResult]) -> None:
    html = (runs[1].out_dir / "report.html").read_text()
    assert "Model updates travelled CKKS-encrypted (protection: ckks)" in html
    assert "Still in the clear" in html and "Key custody" in html


def test_ckks_without_keys_is_a_clear_error(tmp_path: Path) -> None:
    raw = yaml.safe_load(FLAGSHIP.read_text())
    index = next(i for i, step in enumerate(raw["steps"]) if step["kind"] == "fl_train")
    raw["steps"][index]["params"].update(aggregation="ckks", rounds=2)
    from workbench.runner import RunError

    with pytest.raises(RunError, match="aggregation ckks needs keys, and 'aggregator' holds none: add a `ckks_keys` step before fl_train"):
        run_recipe(parse_recipe(yaml.safe_dump(raw)), tmp_path / "run")
