"""A sweep's comparison reads scores, attacks and a published DP epsilon by shape, whichever steps published them."""

from __future__ import annotations

from typing import Any

from workbench.report.blocks import Figure, Table
from workbench.report.sweep_comparison import VariantMetrics, comparison_rows, sweep_blocks


def _metrics(auc: float, tpr: dict[str, float], epsilon: float | None) -> dict[str, Any]:
    attacks = {
        attack: {"tpr_at_fpr_0.01": {"value": value, "interval": [value / 2, value * 2]}, "auc": {"value": 0.5, "interval": [0.4, 0.6]}}
        for attack, value in tpr.items()
    }
    # fl_train's shape: each site's accountant states what it spent; a smaller site spends more of a fixed noise
    spent = {"north": {"epsilon": epsilon, "delta": 1e-5}, "south": {"epsilon": epsilon + 0.5, "delta": 1e-5}} if epsilon is not None else None
    trained = {"aggregator": {"rounds": {}, **({"dp": spent} if spent else {})}}
    return {
        "steps": {
            "fl_dp": trained,
            "evaluate": {"north": {"federated": {"auc": auc, "brier": 0.2}}, "south": {"federated": {"auc": auc - 0.1, "brier": 0.2}}},
            "audit": {"north": {"federated": {**attacks, "attacker": {"population_rows": 10}}}},
        }
    }


def test_rows_take_auc_the_strongest_attack_and_a_dp_epsilon_published_at_the_aggregator() -> None:
    variants = [
        VariantMetrics("epsilon=1", 1, "1", _metrics(0.7, {"loss": 0.02, "rmia": 0.05}, 1.0), {"fl_dp": "federated"}),
        VariantMetrics("epsilon=null", None, "null", _metrics(0.8, {"loss": 0.09, "rmia": 0.03}, None), {"fl_dp": "federated"}),
        VariantMetrics("epsilon=-1", -1, "-1", None, status="failed", error="steps[1].params.epsilon: must be > 0"),
    ]
    rows = comparison_rows(variants)
    by_key = {(row["variant"], row["site"]): row for row in rows}
    assert set(by_key) == {("epsilon=1", "north"), ("epsilon=1", "south"), ("epsilon=null", "north"), ("epsilon=null", "south")}
    north = by_key["epsilon=1", "north"]
    assert (north["auc"], north["attack"], north["attack_tpr_at_1pct_fpr"], north["attack_interval"], north["dp_epsilon"]) == (
        0.7,
        "rmia",
        0.05,
        [0.025, 0.1],
        1.0,
    )
    assert by_key["epsilon=1", "south"]["attack"] is None and by_key["epsilon=1", "south"]["dp_epsilon"] == 1.5
    assert by_key["epsilon=null", "north"]["attack"] == "loss" and "dp_epsilon" not in by_key["epsilon=null", "north"]

    blocks = sweep_blocks("steps[fl_dp].params.epsilon", variants, rows)
    tables = [block for block in blocks if isinstance(block, Table)]
    assert tables[0].rows[2] == ["epsilon=-1", "-1", "failed", "", "steps[1].params.epsilon: must be > 0"]
    assert tables[1].columns[-1] == "DP ε" and tables[1].rows[0][-1] == 1.0
    assert [block.title for block in blocks if isinstance(block, Figure)] == ["Held-out AUC against epsilon", "Utility against measured leakage"]


def test_a_client_level_epsilon_published_at_the_aggregator_stands_beside_every_site() -> None:
    metrics = _metrics(0.6, {"loss": 0.02}, None)
    client = {"level": "client", "epsilon": 2.0, "delta": 1e-4, "noise_multiplier": 8.5, "clip": 1.0, "rounds": 20}
    metrics["steps"]["fl_dp"]["aggregator"]["dp"] = client
    rows = comparison_rows([VariantMetrics("level=client", "client", "client", metrics, {"fl_dp": "federated"})])
    assert {row["site"]: row["dp_epsilon"] for row in rows} == {"north": 2.0, "south": 2.0}
