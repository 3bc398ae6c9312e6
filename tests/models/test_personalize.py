"""Local fine-tuning after federated training: its own model, the global standardization, refused under DP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import uci_recipe
from workbench.models import model_key
from workbench.models.personalize import PersonalizeParams
from workbench.recipe import parse_recipe
from workbench.runner import run_recipe
from workbench.steps.fl_train import FLTrainParams

FEATURES = "{numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak]}"
RECIPE = uci_recipe(
    "personalize",
    f"""\
  - kind: fl_train
    params: {{label: heart_disease, features: {FEATURES}, rounds: 5, batch_size: null, learning_rate: 1.0, personalize: {{steps: 30}}}}
  - {{kind: evaluate, params: {{label: heart_disease, models: [federated, federated_personalized]}}}}
""",
)


def test_each_site_fine_tunes_the_final_model_on_its_own_rows(tmp_path: Path) -> None:
    run = run_recipe(parse_recipe(RECIPE), tmp_path / "run")
    tuned = {}
    for site in ("cleveland", "hungary"):
        federated, personalized = (run.stores[site].get(model_key(name)) for name in ("federated", "federated_personalized"))
        assert np.array_equal(federated.standardizer.center, personalized.standardizer.center)
        assert np.abs(federated.params - personalized.params).max() > 1e-3
        tuned[site] = personalized.params
        assert run.metrics["steps"]["evaluate"][site]["federated_personalized"]["versus"]["baseline"] == "federated"
    assert np.abs(tuned["cleveland"] - tuned["hungary"]).max() > 1e-3  # each on its own rows
    assert run.metrics["steps"]["fl_train"]["aggregator"]["personalized"] == {"model": "federated_personalized", "steps": 30}


def test_personalize_asks_for_exactly_one_amount_of_work_and_is_refused_under_dp() -> None:
    with pytest.raises(ValidationError, match="exactly one of epochs or steps"):
        PersonalizeParams(epochs=1, steps=5)
    with pytest.raises(ValidationError, match="escape the dp budget"):
        FLTrainParams.model_validate({"label": "y", "features": {"numeric": ["a"]}, "dp": {"epsilon": 1, "delta": 1e-5}, "personalize": {"steps": 5}})
