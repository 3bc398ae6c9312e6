"""Federated standardization under CKKS: the moments are summed encrypted and standardize as plain ones do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from workbench.crypto import ckks
from workbench.fl import moments
from workbench.fl.accounting_grid import Transfer
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_embedded
from workbench.fl.server_app import FLOutcome


def keyed(site_configs: list[dict[str, Any]], folder: Path, custody: str) -> tuple[list[dict[str, Any]], bytes, Any]:
    """Node configs with each site's context file, the aggregator's context, and the secret context."""
    if custody == "clients":
        secret = ckks.secret_context(ckks.choose_parameters())
        site_bytes, aggregator = ckks.context_bytes(secret, secret=True), ckks.context_bytes(secret, secret=False, public_key=False)
    else:
        secret = ckks.secret_context(ckks.masking_parameters())
        site_bytes = aggregator = ckks.context_bytes(secret, secret=False)
    configs = []
    for config in site_configs:
        path = folder / f"{config['party']}.ctx"
        path.write_bytes(site_bytes)
        configs.append({**config, "ckks-context-path": str(path)})
    if custody == "key_holder":
        path = folder / "holder.ctx"
        path.write_bytes(ckks.context_bytes(secret, secret=True))
        configs.append({"party": "holder", "role": "key_holder", "aggregation": "ckks", "ckks-context-path": str(path)})
    return configs, aggregator, secret


@pytest.mark.parametrize("custody", ["clients", "key_holder"])
def test_encrypted_moments_standardize_as_plain_ones(
    custody: str, site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], tmp_path: Path
) -> None:
    plain = run_embedded(make_plan(rounds=3), site_configs, lambda r, m: None, lambda t: None)
    configs, aggregator, secret = keyed(site_configs, tmp_path, custody)
    plan = make_plan(rounds=3, aggregation="ckks", key_holder="holder" if custody == "key_holder" else None)
    transfers: list[Transfer] = []
    outcome = run_embedded(plan, configs, lambda r, m: None, transfers.append, aggregator)
    stats = [t for t in transfers if t.kind == "fl.stats" and t.sender != "holder"]
    assert len(stats) == 3 and {t.protection for t in stats} == {"ckks"}, "no site's moments travel in the clear"
    if custody == "clients":
        assert outcome.center == [] and outcome.scale == [] and outcome.encrypted_moments, "the aggregator cannot read them"
        standardizer, rows = moments.decrypt(secret, outcome.encrypted_moments, 2, 3)
        center, scale = standardizer.center, standardizer.scale
        assert rows == sum(len(pl.read_parquet(c["data-path"]).filter(~pl.col("is_test"))) for c in site_configs)
        again = FLOutcome.from_dict(json.loads(outcome.to_json())["outcome"])
        assert again.encrypted_moments == outcome.encrypted_moments, "the outcome file of simulation and deployment keeps them"
    else:
        masked = [t for t in transfers if t.kind == "ckks.masked_decryption"]
        assert len(masked) == 4 and {t.protection for t in masked} == {"masked"}, "moments once, then one per round"
        center, scale = np.asarray(outcome.center), np.asarray(outcome.scale)
        assert np.abs(np.asarray(outcome.params) - np.asarray(plain.params)).max() < 1e-6
    assert np.abs(center - np.asarray(plain.center)).max() < 1e-9 and np.abs(scale - np.asarray(plain.scale)).max() < 1e-9
    assert np.abs(np.asarray(plain.center)).max() > 0.1, "the features are not centred already"


def test_a_moment_out_of_range_names_the_feature_and_site() -> None:
    secret = ckks.secret_context(ckks.choose_parameters())
    with pytest.raises(ckks.CKKSError, match=r"sum_of_squares\[steps\] at 'big' is 2e\+19, outside the declared range ±2\^60"):
        moments.encrypt(secret, "big", ["age", "steps"], 3, 10.0, np.array([1.0, 2.0]), np.array([3.0, 2e19]))
