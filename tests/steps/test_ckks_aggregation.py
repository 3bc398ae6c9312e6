"""Encrypted aggregation in the flagship, which trains plain and under both custodies: the same model, and keys where custody says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import LIGHT_ROUNDS
from workbench.crypto import ckks
from workbench.models import model_key
from workbench.recipe import RecipeError, parse_recipe
from workbench.runner import RunError, RunResult, run_recipe

FLAGSHIP = Path(__file__).parents[2] / "recipes" / "flagship.yaml"
SITES = ("general_hospital", "county_hospital", "trauma_center")
PLAIN, CLIENTS, KEY_HOLDER = "federated", "federated_ckks", "federated_key_holder"
"""The flagship trains the same model three ways and keeps each under its own name."""


def test_encrypted_fedavg_equals_plain_fedavg_under_both_custodies(light_flagship_run: RunResult) -> None:
    """Each round's decrypted aggregate is within CKKS's 1e-6 of the plain one; a FedAvg step at learning rate 1 passes
    that error on, so after R rounds the models differ by at most about R x 1e-6 (1.1e-6 was seen after 15 rounds: the
    per-round errors do not always cancel in the worst coordinate)."""
    run = light_flagship_run
    for site in SITES:
        plain = run.stores[site].get(model_key(PLAIN)).params
        for name in (CLIENTS, KEY_HOLDER):
            assert np.abs(run.stores[site].get(model_key(name)).params - plain).max() < LIGHT_ROUNDS * 1e-6, (site, name)
    for site, scores in run.metrics["steps"]["evaluate"].items():
        for name in (CLIENTS, KEY_HOLDER):
            for metric in ("auc", "brier", "accuracy"):
                assert scores[name][metric] == pytest.approx(scores[PLAIN][metric], abs=1e-4), (site, name, metric)


def test_every_update_is_ckks_protected(light_flagship_run: RunResult) -> None:
    # Custody clients: the aggregator never sees the aggregate, so it broadcasts ciphertexts after the public initial
    # model. Custody key_holder: it ends each round with the unmasked aggregate and broadcasts that in the clear.
    for step, broadcast in (("fl_ckks", "ckks"), ("fl_ckks_key_holder", "none")):
        messages = [m for m in light_flagship_run.ledger.messages if m.step == step]
        updates = [m for m in messages if m.kind == "fl.update"]
        assert len(updates) == LIGHT_ROUNDS * len(SITES) and {m.protection.value for m in updates} == {"ckks"}, step
        broadcasts = [m for m in messages if m.kind == "fl.model"]
        assert {m.protection.value for m in broadcasts[len(SITES) :]} == {broadcast}, step
    plain = [m for m in light_flagship_run.ledger.messages if m.step == "fl_plain" and m.kind == "fl.update"]
    assert {m.protection.value for m in plain} == {"none"}


def test_custody_clients_gives_the_aggregator_no_secret_key(light_flagship_run: RunResult) -> None:
    keys = light_flagship_run.manifest["steps"]["keys_clients"]
    assert keys["custody"] == "clients" and keys["secret_key_holders"] == list(SITES)
    held = {party: ckks.fingerprint(store.get(ckks.SECRET_ITEM)) for party, store in light_flagship_run.stores.items() if store.has(ckks.SECRET_ITEM)}
    assert {party for party, fp in held.items() if fp == keys["secret_context_sha256"]} == set(SITES)
    assert "aggregator" not in held
    site = ckks.load_context(light_flagship_run.stores[SITES[0]].get(ckks.SECRET_ITEM))
    with pytest.raises(ckks.CKKSError, match="holds no secret key"):  # the last keys in the aggregator's store are key_holder's
        ckks.decrypt(ckks.load_context(light_flagship_run.stores["aggregator"].get(ckks.AGGREGATOR_ITEM)), ckks.encrypt(site, np.ones(4)), 4)


def test_custody_key_holder_leaves_the_secret_key_with_the_key_holder_alone(light_flagship_run: RunResult) -> None:
    stores = light_flagship_run.stores
    keys = light_flagship_run.manifest["steps"]["keys_key_holder"]
    assert ckks.load_context(stores["key_holder"].get(ckks.SECRET_ITEM)).is_private()
    holders = {
        party
        for party, store in stores.items()
        if store.has(ckks.SECRET_ITEM) and ckks.fingerprint(store.get(ckks.SECRET_ITEM)) == keys["secret_context_sha256"]
    }
    assert holders == {"key_holder"}
    public = [ckks.load_context(stores[party].get(ckks.PUBLIC_ITEM)) for party in SITES]
    aggregator = ckks.load_context(stores["aggregator"].get(ckks.AGGREGATOR_ITEM))
    ciphertext = ckks.encrypt(public[0], np.ones(4))
    for context in (*public, aggregator):
        with pytest.raises(ckks.CKKSError, match="holds no secret key"):
            ckks.decrypt(context, ciphertext, 4)
    assert ckks.decrypt(ckks.load_context(stores["key_holder"].get(ckks.SECRET_ITEM)), ciphertext, 4) == pytest.approx(np.ones(4), abs=1e-6)


def test_the_key_holder_sees_only_masked_sums(light_flagship_run: RunResult) -> None:
    messages = [m for m in light_flagship_run.ledger.messages if m.step == "fl_ckks_key_holder"]
    to_holder = [m for m in messages if m.receiver == "key_holder" and m.kind == "ckks.masked_sum"]
    from_holder = [m for m in messages if m.sender == "key_holder" and m.kind == "ckks.masked_decryption"]
    assert len(to_holder) == len(from_holder) >= LIGHT_ROUNDS, "one masked sum a round (and any encrypted statistics), each answered once"
    assert {m.protection.value for m in to_holder} == {"ckks"} and {m.protection.value for m in from_holder} == {"masked"}
    assert not any(m.receiver == "key_holder" and m.kind == "fl.update" for m in messages), "no update reaches the key holder"
    assert not any(m.receiver == "key_holder" for m in light_flagship_run.ledger.messages if m.step in ("fl_plain", "fl_ckks"))


def test_report_states_custody_and_what_stayed_in_the_clear(light_flagship_run: RunResult) -> None:
    html = (light_flagship_run.out_dir / "report.html").read_text()
    assert "Model updates travelled CKKS-encrypted (protection: ckks)" in html
    assert "Custody: clients." in html and "Custody: key_holder." in html


def _small_encrypted_training(keys: dict | None) -> str:
    """Split and a 2-round encrypted fl_train on the hospitals' own tables, with the given ckks_keys step (or none) first."""
    raw = yaml.safe_load(FLAGSHIP.read_text())
    split = next(step for step in raw["steps"] if step["kind"] == "split")
    fl = next(step for step in raw["steps"] if step["kind"] == "fl_train" and step["params"]["aggregation"] == "ckks")
    fl = {**fl, "params": {**fl["params"], "table": "ehr", "rounds": 2, "features": {"numeric": ["age", "asa_class"]}}}
    fl.pop("at", None)
    raw["steps"] = [{**split, "params": {**split["params"], "table": "ehr"}}, *([keys] if keys else []), fl]
    return yaml.safe_dump(raw)


def test_ckks_without_keys_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="step 'fl_ckks' .fl_train. needs CKKS keys at .*add a `ckks_keys` step before it"):
        parse_recipe(_small_encrypted_training(None))
    with pytest.raises(RunError, match="aggregation ckks needs keys, and 'aggregator' holds none: add a `ckks_keys` step before fl_train"):
        run_recipe(parse_recipe(_small_encrypted_training(None), check_chain=False), tmp_path / "run")


def test_custody_clients_ignores_a_key_holder_among_its_parties(tmp_path: Path) -> None:
    """A key_holder party in the recipe gets nothing under custody clients, and training runs as custody clients."""
    run = run_recipe(parse_recipe(_small_encrypted_training({"kind": "ckks_keys", "params": {"custody": "clients"}})), tmp_path / "run")
    assert not run.stores["key_holder"].has(ckks.SECRET_ITEM) and not run.stores["key_holder"].has(ckks.PUBLIC_ITEM)
    assert not any(m.receiver == "key_holder" or m.sender == "key_holder" for m in run.ledger.messages)
    assert next(iter(run.metrics["steps"]["fl_ckks"].values()))["custody"] == "clients"


def test_the_key_holder_releases_values_on_a_coarse_grid() -> None:
    values = ckks.release(np.array([0.1, -3.3, 2.0**27 + 1e-9]))
    assert np.all(values * 2.0**ckks.RELEASE_BITS == np.round(values * 2.0**ckks.RELEASE_BITS))
    assert np.abs(values - [0.1, -3.3, 2.0**27]).max() <= 2.0 ** -(ckks.RELEASE_BITS + 1)


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
