"""A site's own accountant: noise calibrated to its rows, a budget it will not overspend, a delta its rows can carry."""

from __future__ import annotations

import pytest

from workbench.privacy.dp_params import DPParams
from workbench.privacy.dp_sgd import epsilon
from workbench.privacy.site_account import PrivacyBudgetError, open_account


def test_calibrated_noise_spends_the_target_over_the_whole_schedule_and_never_more() -> None:
    dp = DPParams(epsilon=2.0, delta=1e-4)
    for rows in (200, 2000):
        schedule = dp.schedule(rows, batch_size=50, epochs_per_round=1, rounds=20)
        account = open_account("site", dp, schedule, rows)
        final = account.spent(schedule.rounds)
        assert 2.0 * 0.99 < final.epsilon <= 2.0, rows
        assert final.epsilon == epsilon(account.noise_multiplier, schedule.sample_rate, schedule.steps, 1e-4)
        assert account.allow(schedule.rounds) == final
        assert account.spent(5).epsilon < account.spent(10).epsilon < final.epsilon
    small, large = (open_account("site", dp, dp.schedule(rows, 50, 1, 20), rows) for rows in (200, 2000))
    assert small.noise_multiplier > large.noise_multiplier  # a small site samples a larger share of its rows: more noise


def test_a_fixed_noise_stops_before_the_round_that_would_exceed_the_budget_naming_the_site() -> None:
    dp = DPParams(epsilon=3.0, noise_multiplier=3.0, delta=1e-3)
    schedule = dp.schedule(140, batch_size=None, epochs_per_round=1, rounds=30)
    account = open_account("va_long_beach", dp, schedule, 140)
    last = max(r for r in range(1, 31) if account.spent(r).epsilon <= 3.0)
    assert 1 < last < 30
    assert account.allow(last).epsilon <= 3.0
    with pytest.raises(
        PrivacyBudgetError,
        match=rf"site 'va_long_beach': training round {last + 1} would bring its epsilon to 3\.\d+ .*budget epsilon 3; it stopped after {last} round",
    ):
        account.allow(last + 1)


def test_without_a_budget_the_epsilon_is_only_reported() -> None:
    dp = DPParams(noise_multiplier=0.5, delta=1e-3)
    account = open_account("a", dp, dp.schedule(100, None, 1, 100), 100)
    assert account.allow(100).epsilon > 50


def test_a_delta_the_sites_rows_cannot_carry_is_refused_naming_the_site() -> None:
    dp = DPParams(epsilon=1.0, delta=0.01)
    with pytest.raises(PrivacyBudgetError, match=r"site 'tiny': dp.delta 0.01 is not below 1 / its 100 training rows.*below 1.0e-02"):
        open_account("tiny", dp, dp.schedule(100, None, 1, 1), 100)
