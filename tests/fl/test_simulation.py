"""Flower's simulation engine (Ray) runs the same app to the same result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_embedded, run_simulation


def test_simulation_matches_embedded(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    plan = make_plan(rounds=3)
    rounds: list[int] = []
    simulated = run_simulation(plan, site_configs, lambda r, m: rounds.append(r), lambda t: None)
    embedded = run_embedded(plan, site_configs, lambda r, m: None, lambda t: None)
    assert rounds == [1, 2, 3]
    assert np.abs(np.array(simulated.params) - np.array(embedded.params)).max() < 1e-6
    assert set(simulated.history[3]) == {"big", "mid", "small"}
