"""The recipe's `dp:` fields: one way to set the noise, a budget that binds, and a site's schedule from its rows."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workbench.privacy.dp_params import DPParams, LocalDPParams, dp_spent, is_client_level, largest_epsilon


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs a budget"),
        ({"noise_multiplier": 1.0, "target_epsilon": 2.0}, "not both"),
        ({"epsilon": 1.0, "target_epsilon": 2.0}, "exceeds the budget"),
        ({"epsilon": 0.0}, "greater than 0"),
        ({"epsilon": 1.0, "delta": 0.5}, "less than or equal to 0.01"),
        ({"epsilon": 1.0, "sampling": "shuffle"}, "'poisson'"),
        ({"epsilon": 1.0, "clipping": 1.0}, "Extra inputs"),
    ],
)
def test_contradictory_or_out_of_range_fields_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DPParams.model_validate(fields)


def test_the_noise_is_calibrated_to_the_target_else_to_the_budget_unless_it_is_fixed() -> None:
    assert DPParams(epsilon=4.0).calibrate_to == 4.0
    assert DPParams(epsilon=4.0, target_epsilon=3.0).calibrate_to == 3.0
    assert DPParams(epsilon=4.0, noise_multiplier=2.0).calibrate_to is None
    assert DPParams(noise_multiplier=2.0).epsilon is None  # no budget: the epsilon spent is only reported


def test_a_site_samples_its_batch_size_out_of_its_rows_and_makes_as_many_steps_as_plain_sgd() -> None:
    dp = DPParams(epsilon=1.0)
    assert dp.schedule(rows=1000, batch_size=None, epochs_per_round=2, rounds=10) == dp.schedule(1000, None, 2, 10)
    full = dp.schedule(rows=1000, batch_size=None, epochs_per_round=2, rounds=10)
    assert (full.sample_rate, full.steps_per_round, full.steps) == (1.0, 2, 20)
    batches = dp.schedule(rows=1000, batch_size=32, epochs_per_round=1, rounds=10)
    assert batches.sample_rate == 0.032 and batches.steps_per_round == 32 and batches.steps == 320  # ceil(1000 / 32)
    small = dp.schedule(rows=100, batch_size=32, epochs_per_round=1, rounds=10)
    assert small.sample_rate == 0.32 and small.steps_per_round == 4  # a small site: a larger share of its rows per step
    assert dp.schedule(rows=10, batch_size=32, epochs_per_round=1, rounds=1).sample_rate == 1.0
    fixed = DPParams(epsilon=1.0, sample_rate=0.1).schedule(rows=1000, batch_size=32, epochs_per_round=1, rounds=3)
    assert (fixed.sample_rate, fixed.steps_per_round) == (0.1, 10)
    local = LocalDPParams(epsilon=1.0, steps=50).local_schedule()
    assert (local.sample_rate, local.steps, local.rounds) == (1.0, 50, 1)


def test_what_each_site_spent_is_read_from_its_last_update() -> None:
    def stated(epsilon: float, steps: int) -> dict[str, float | None]:
        return {
            "train-loss": None,
            "dp-epsilon": epsilon,
            "dp-delta": 1e-5,
            "dp-noise_multiplier": 3.0,
            "dp-clip": 1.0,
            "dp-sample_rate": 1.0,
            "dp-steps": steps,
        }

    history = {1: {"a": stated(0.5, 1), "b": stated(0.7, 1)}, 2: {"a": stated(0.8, 2)}, 3: {"a": {"auc": 0.7}}}
    spent = dp_spent(history)
    assert spent["a"]["epsilon"] == 0.8 and spent["a"]["rounds"] == 2 and spent["a"]["steps"] == 2
    assert spent["b"]["epsilon"] == 0.7 and spent["b"]["rounds"] == 1
    assert spent["a"]["accountant"].startswith("RDP (dp-accounting ")
    assert dp_spent({1: {"a": {"train-loss": 0.3}}}) == {}


def test_client_level_takes_its_rounds_from_fl_train_and_local_train_refuses_it() -> None:
    dp = DPParams(level="client", epsilon=2.0)
    assert DPParams(epsilon=2.0).level == "sample", "sample level is the default"
    schedule = dp.client_schedule(rounds=20)
    assert (schedule.sample_rate, schedule.steps_per_round, schedule.steps) == (1.0, 1, 20), "each round charged in full"
    with pytest.raises(ValidationError, match="sample_rate is the share of a site's rows"):
        DPParams(level="client", epsilon=2.0, sample_rate=0.5)
    with pytest.raises(ValidationError, match="local_train protects rows: dp.level must be sample"):
        LocalDPParams(level="client", epsilon=2.0)


def test_the_largest_epsilon_is_read_from_either_shape() -> None:
    assert largest_epsilon({"a": {"epsilon": 1.5}, "b": {"epsilon": 2.0}}) == 2.0 and not is_client_level({"a": {"epsilon": 1.5}})
    client = {"level": "client", "epsilon": 3.0, "delta": 1e-5, "noise_multiplier": 2.0}
    assert largest_epsilon(client) == 3.0 and is_client_level(client)
    assert largest_epsilon({"a": {"epsilon": None}}) is None
