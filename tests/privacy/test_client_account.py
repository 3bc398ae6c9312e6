"""The aggregator's account under client-level DP: one Gaussian mechanism per round, a budget checked before any message."""

from __future__ import annotations

import pytest

from workbench.privacy.client_account import open_client_account
from workbench.privacy.dp_params import DPParams
from workbench.privacy.dp_sgd import epsilon
from workbench.privacy.site_account import PrivacyBudgetError


def test_calibrated_noise_spends_the_target_over_the_rounds_and_never_more() -> None:
    account = open_client_account(DPParams(level="client", epsilon=2.0, delta=1e-4, clip=0.5), rounds=20, sites=3)
    assert 2.0 * 0.99 < account.epsilon(20) <= 2.0
    assert account.epsilon(20) == epsilon(account.noise_multiplier, 1.0, 20, 1e-4)
    assert account.epsilon(5) < account.epsilon(20)
    spent = account.spent(20, sites_per_round=3)
    assert spent["noise_std"] == pytest.approx(account.noise_multiplier * 0.5 / 3) and spent["level"] == "client"


def test_a_fixed_noise_that_would_overspend_is_refused_naming_the_rounds_that_fit() -> None:
    dp = DPParams(level="client", epsilon=3.0, noise_multiplier=3.0, delta=1e-4)
    fitting = max(r for r in range(1, 40) if epsilon(3.0, 1.0, r, 1e-4) <= 3.0)
    assert open_client_account(dp, fitting, 3).epsilon(fitting) <= 3.0
    with pytest.raises(PrivacyBudgetError, match=rf"client-level DP: 40 rounds at dp.noise_multiplier 3 would spend epsilon \d+\.\d+ .*; {fitting} round"):
        open_client_account(dp, 40, 3)


def test_delta_must_lie_below_one_over_the_sites() -> None:
    with pytest.raises(PrivacyBudgetError, match="dp.delta 0.01 is not below 1 / the 200 sites"):
        open_client_account(DPParams(level="client", epsilon=1.0, delta=1e-2), 10, 200)
