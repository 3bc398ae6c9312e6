"""aggregation secagg over Flower: masked updates whose sum equals plain FedAvg's within the quantization error, and rounds
that survive sites dropping out at each step of the protocol (the embedded runtime; the deployment runtime's SuperNode
killed between masking and unmasking is in test_deployment.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from workbench.crypto.secagg import SecAggDropoutError, SecAggParams
from workbench.fl.accounting_grid import Transfer
from workbench.fl.aggregation.secagg import CLIPPED, SecAgg, trust_model
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_embedded

from .dropouts import run_with_victims

SITE_COUNT = 3


def test_secagg_fedavg_equals_plain_fedavg_within_the_quantization_error(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    transfers: list[Transfer] = []
    plain = run_embedded(make_plan(), site_configs, lambda r, m: None, lambda t: None)
    masked = run_embedded(make_plan(aggregation="secagg"), site_configs, lambda r, m: None, transfers.append)
    bound = SecAggParams().error_bound(SITE_COUNT)  # 3 sites · step/2, step = 16 / 2^22
    assert bound == pytest.approx(5.7e-6, rel=0.01)
    first = np.abs(np.subtract(masked.first_global, plain.first_global))
    assert 0 < first.max() <= bound, "round 1's average: within the bound, and not bit-equal (the sum was quantized)"
    assert np.abs(np.subtract(masked.params, plain.params)).max() < 1e-4
    for site, scores in plain.history[5].items():
        for metric in ("auc", "eval-loss", "train-loss"):
            assert masked.history[5][site][metric] == pytest.approx(scores[metric], abs=1e-4)
    assert masked.center == pytest.approx(plain.center, abs=1e-6) and masked.scale == pytest.approx(plain.scale, abs=1e-6)

    updates = [t for t in transfers if t.kind == "fl.update"]
    assert len(updates) == 5 * SITE_COUNT and {t.protection for t in updates} == {"masked"}
    kinds = Counter(t.kind for t in transfers)
    assert kinds["secagg.unmask+share_keys"] == 5 * SITE_COUNT, "Unmasking of the moments and of rounds 1-4 with ShareKeys of the next"
    assert kinds["secagg.unmask"] == SITE_COUNT and "secagg.advertise" not in kinds, "the last round's alone; keys came with each update"
    assert kinds["secagg.share_keys"] == kinds["secagg.masked_moments+public_keys"] == SITE_COUNT and "fl.stats" not in kinds, "no moment in the clear"
    queries = sum(n for kind, n in kinds.items() if kind.startswith("secagg.") and kind in {t.kind for t in transfers if t.sender == "aggregator"})
    assert queries == 3 * SITE_COUNT + 5 * SITE_COUNT, "the moments' 3 exchanges, then one per round besides training and evaluation"
    assert {t.protection for t in transfers if "sealed_shares" in t.kind} == {"encrypted"}


def test_a_site_gone_before_unmasking_stays_in_the_sum(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    """Its masked input arrived: the others' shares of its seed remove its self-mask, so its update is in the round, as in
    plain FedAvg where its update arrived too."""
    victims = {"small": (2, "train")}
    masked = run_with_victims(site_configs, make_plan(aggregation="secagg", min_available_clients=2, rounds=4), victims)
    plain = run_with_victims(site_configs, make_plan(min_available_clients=2, rounds=4), victims)
    assert masked.dropped == plain.dropped == {2: ["small"], 3: ["small"], 4: ["small"]}
    assert set(masked.history[2]) == {"big", "mid", "small"} and set(masked.history[4]) == {"big", "mid"}
    assert np.abs(np.subtract(masked.params, plain.params)).max() < 1e-4


def test_a_site_gone_after_sharing_keys_is_unmasked_from_its_mask_key(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    """It shared its keys for round 2 (while round 1 unmasked) and dies as round 2's training message arrives, so it never
    sends a masked input: the survivors' shares of its mask key remove the pairwise masks it added to theirs, and round 2
    averages the survivors' updates alone (their weights renormalized), as plain FedAvg with the same site gone."""
    transfers: list[Transfer] = []
    plan = make_plan(aggregation="secagg", min_available_clients=2, rounds=3)
    masked = run_with_victims(site_configs, plan, {"mid": (2, "train")}, silent=True, on_transfer=transfers.append)
    plain = run_with_victims(site_configs, make_plan(min_available_clients=2, rounds=3), {"mid": (2, "train")}, silent=True)
    assert masked.dropped == plain.dropped == {2: ["mid"], 3: ["mid"]}
    assert [t.receiver for t in transfers if t.kind == "fl.model_and_sealed_shares"].count("mid") == 2, "asked to train in round 2"
    assert np.abs(np.subtract(masked.params, plain.params)).max() < 1e-4


def test_below_the_threshold_the_round_stops_saying_so(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    plan = make_plan(aggregation="secagg", min_available_clients=1, rounds=2)
    with pytest.raises(SecAggDropoutError, match="round 1: Unmasking: 1 of the 3 surviving sites answered \\(big\\), fewer than reconstruction_threshold 2"):
        run_with_victims(site_configs, plan, {"mid": (1, "train"), "small": (1, "train")})


def test_the_trust_model_names_the_recipes_numbers() -> None:
    three = trust_model({"sites": 3, "num_shares": 3, "reconstruction_threshold": 2})
    assert "among 3 sites with threshold 2" in three and "colluding with 2 of the other sites" in three
    assert "needs only 1 colluding site to unmask another" in three
    assert "needs only 0 colluding sites" in trust_model({"sites": 10, "num_shares": 10, "reconstruction_threshold": 4})
    assert "each site, knowing its own update, reads the other's" in trust_model({"sites": 2, "num_shares": 2, "reconstruction_threshold": 2})


def test_clipped_values_are_counted_and_reported(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    """Clipping, unlike rounding, changes the model: each site counts what it clipped, and the report says how many."""
    plain = run_embedded(make_plan(rounds=2), site_configs, lambda r, m: None, lambda t: None)
    tight = run_embedded(make_plan(rounds=2, aggregation="secagg", secagg=SecAggParams(clip_range=0.05)), site_configs, lambda r, m: None, lambda t: None)
    counted = {site: metrics[CLIPPED] for site, metrics in tight.history[2].items()}
    assert all(count > 0 for count in counted.values()) and np.abs(np.subtract(tight.params, plain.params)).max() > 0.01
    summary = {"update_protection": "masked", "sites": 3, "num_shares": 3, "reconstruction_threshold": 2, "clip_range": 0.05}
    summary |= {"quantization_bits": 22, "quantization_error": 1e-8, "rounds": {str(r): sites for r, sites in tight.history.items()}}
    total = sum(int(m[CLIPPED]) for sites in tight.history.values() for m in sites.values())
    assert f"{total} values were clipped in all" in SecAgg.describe("aggregator", summary)
    default = run_embedded(make_plan(rounds=2, aggregation="secagg"), site_configs, lambda r, m: None, lambda t: None)
    assert {m[CLIPPED] for sites in default.history.values() for m in sites.values()} == {0}
    assert "no site clipped any value" in SecAgg.describe("aggregator", {**summary, "rounds": default.history})
