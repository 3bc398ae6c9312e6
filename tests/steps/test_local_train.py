"""Local training, exact or by DP-SGD within the site's budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import uci_recipe
from workbench.models import model_key
from workbench.recipe import parse_recipe
from workbench.runner import RunError, run_recipe

RECIPE = uci_recipe(
    "local_dp",
    """\
  - kind: local_train
    params: &local {label: heart_disease, features: {numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak, exang]}}
  - kind: local_train
    name: local_dp
    params: {<<: *local, dp: {epsilon: 4, delta: 1e-3, steps: 200, learning_rate: 0.5}, save_as: local_dp}
  - {kind: evaluate, params: {label: heart_disease, models: [local, local_dp]}}
""",
)


def test_dp_sgd_at_each_site_spends_its_budget_and_publishes_no_count_of_positives(tmp_path: Path) -> None:
    run = run_recipe(parse_recipe(RECIPE), tmp_path / "run")
    published = run.metrics["steps"]["local_dp"]
    for site in ("cleveland", "hungary"):
        spent = published[site]["dp"]
        assert 4.0 * 0.99 < spent["epsilon"] <= 4.0 and spent["steps"] == 200 and spent["sample_rate"] == 1.0
        assert "train_positives" not in published[site] and "train_positives" in run.metrics["steps"]["local_train"][site]
        exact, private = (run.stores[site].get(model_key(name)).params for name in ("local", "local_dp"))
        assert np.abs(exact - private).max() > 1e-2
        assert run.metrics["steps"]["evaluate"][site]["local_dp"]["auc"] > 0.6
    assert run.manifest["steps"]["local_dp"]["dp"]["hungary"]["noise_multiplier"] == published["hungary"]["dp"]["noise_multiplier"]
    assert "Differential privacy spent, per site" in (run.out_dir / "report.html").read_text()


def test_a_fixed_noise_that_would_exceed_the_budget_trains_nothing_and_names_the_site(tmp_path: Path) -> None:
    recipe = parse_recipe(RECIPE, overrides=["steps[2].params.dp={epsilon: 1, noise_multiplier: 1, delta: 1e-3}"])
    with pytest.raises(RunError, match=r"site 'cleveland': training round 1 would bring its epsilon to \d+\.\d+ .*over the budget epsilon 1"):
        run_recipe(recipe, tmp_path / "run")


def test_dp_noise_is_secret_by_default_and_repeats_only_when_the_recipe_seeds_it(tmp_path: Path) -> None:
    """Noise every party could recompute from the recipe's seed could be subtracted: by default a rerun draws other noise."""

    def params(noise: str, run: str) -> np.ndarray:
        recipe = parse_recipe(RECIPE, overrides=[f"steps[2].params.dp.noise={noise}"])
        result = run_recipe(recipe, tmp_path / run)
        assert ("fresh at 'hungary'" if noise == "secret" else "recipe seed 1") in result.manifest["steps"]["local_dp"]["dp"]["hungary"]["noise_seed"]
        assert ("dp.noise: seeded" in (result.out_dir / "report.html").read_text()) is (noise == "seeded")
        return result.stores["hungary"].get(model_key("local_dp")).params

    first, second = params("secret", "a"), params("secret", "b")
    assert np.abs(first - second).max() > 1e-3
    assert np.array_equal(params("seeded", "c"), params("seeded", "d"))
