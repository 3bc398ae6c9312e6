"""Encrypted aggregation in a whole run: same model as plain FedAvg, and the aggregator never holds a key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from workbench.crypto import ckks
from workbench.models import model_key
from workbench.recipe import Recipe, load_recipe, parse_recipe
from workbench.runner import RunResult, run_recipe
from workbench.variants import encrypted

FLAGSHIP = Path(__file__).parents[2] / "recipes" / "flagship.yaml"


def flagship(rounds: int) -> Recipe:
    index = next(i for i, step in enumerate(load_recipe(FLAGSHIP).steps) if step.kind == "fl_train")
    return load_recipe(FLAGSHIP, [f"steps[{index}].params.rounds={rounds}"])


def with_ckks(rounds: int) -> tuple[Recipe, Recipe]:
    """The flagship with fewer rounds, plain and with encrypted aggregation (custody clients)."""
    plain = flagship(rounds)
    return plain, encrypted(plain)


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


def key_holder_recipe(rounds: int) -> Recipe:
    """The flagship with a key-holder party holding the only secret key."""
    return encrypted(flagship(rounds), custody="key_holder")


@pytest.fixture(scope="module")
def key_holder_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_recipe(key_holder_recipe(rounds=15), tmp_path_factory.mktemp("holder") / "run")


def test_key_holder_custody_equals_plain_fedavg(runs: tuple[RunResult, RunResult], key_holder_run: RunResult) -> None:
    plain, _ = runs
    for site in ("general_hospital", "trauma_center"):
        a = plain.stores[site].get(model_key("federated")).params
        b = key_holder_run.stores[site].get(model_key("federated")).params
        assert np.abs(a - b).max() < 1e-6


def test_only_the_key_holder_holds_the_secret_key(key_holder_run: RunResult) -> None:
    stores = key_holder_run.stores
    assert ckks.load_context(stores["key_holder"].get(ckks.SECRET_ITEM)).is_private()
    for party in ("general_hospital", "county_hospital", "trauma_center"):
        assert not stores[party].has(ckks.SECRET_ITEM)
        assert not ckks.load_context(stores[party].get(ckks.PUBLIC_ITEM)).is_private()
    assert not ckks.load_context(stores["aggregator"].get(ckks.AGGREGATOR_ITEM)).is_private()


def test_the_key_holder_sees_only_masked_sums(key_holder_run: RunResult) -> None:
    messages = [m for m in key_holder_run.ledger.messages if m.step == "fl_train"]
    to_holder = [m for m in messages if m.receiver == "key_holder" and m.kind == "ckks.masked_sum"]
    from_holder = [m for m in messages if m.sender == "key_holder" and m.kind == "ckks.masked_decryption"]
    assert len(to_holder) == len(from_holder) == 15
    assert {m.protection.value for m in to_holder} == {"ckks"} and {m.protection.value for m in from_holder} == {"masked"}
    assert not any(m.receiver == "key_holder" and m.kind == "fl.update" for m in messages), "no update reaches the key holder"
    assert {m.protection.value for m in messages if m.kind == "fl.update"} == {"ckks"}


def test_masks_swamp_the_values_they_hide() -> None:
    """What the key holder decrypts is the sum plus a mask of ±2^28: two different sums look alike."""
    params = ckks.masking_parameters()
    secret = ckks.secret_context(params)
    public = ckks.load_context(ckks.context_bytes(secret, secret=False))
    seen = {}
    for name, value in (("small", 0.0), ("large", ckks.VALUE_BOUND)):
        masked, mask = ckks.mask(public, ckks.encrypt(public, np.full(4096, value)), 4096)
        decrypted = ckks.decrypt(secret, masked, 4096)
        assert np.abs(decrypted - mask - value).max() < 1e-6, "unmasking recovers the value to the precision asked"
        seen[name] = decrypted
    assert np.abs(seen["small"]).mean() > 2**26 and np.abs(seen["large"]).mean() > 2**26
    assert abs(seen["small"].mean() - seen["large"].mean()) < 6 * 2**28 / np.sqrt(4096), "means indistinguishable within noise"
