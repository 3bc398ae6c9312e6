"""The aggregator's accountant under client-level DP: one account for the whole federation, kept where the noise is added.

At level client the unit protected is a site, and the aggregator, trusted with the updates, clips and noises them, so it
alone can keep the account (the sites' own accountants are sample level's). Each round releases one noised average: a
Gaussian mechanism with noise multiplier sigma on the sum of the clipped updates (sensitivity C for adding or removing
one site's update, the number of sampled sites being public), composed over the rounds without amplification by
sampling (`DPParams.client_schedule` says why). Nothing here depends on the data, so the whole run's epsilon is known,
and the budget checked, before the first message.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from workbench.privacy.dp_params import DPParams, DPSchedule
from workbench.privacy.dp_sgd import accountant_name, epsilon, noise_for_epsilon
from workbench.privacy.site_account import BUDGET_SLACK, PrivacyBudgetError


@dataclass(frozen=True)
class ClientAccount:
    dp: DPParams
    schedule: DPSchedule
    sites: int
    noise_multiplier: float

    def epsilon(self, rounds: int) -> float:
        """What each site's participation has cost after `rounds` released averages (an upper bound for a site sampled in fewer)."""
        return epsilon(self.noise_multiplier, self.schedule.sample_rate, rounds * self.schedule.steps_per_round, self.dp.delta)

    def noise_std(self, sites_per_round: int) -> float:
        """The standard deviation of the noise on each coordinate of the average: sigma * C over the sites averaged, as
        Flower's wrapper draws it (`flwr.supercore.differential_privacy.compute_stdv`)."""
        return self.noise_multiplier * self.dp.clip / sites_per_round

    def spent(self, rounds: int, sites_per_round: int) -> dict[str, Any]:
        """The published account: enough to recompute epsilon as epsilon(noise_multiplier, sample_rate, rounds, delta)."""
        return {
            "level": "client",
            "epsilon": self.epsilon(rounds),
            "delta": self.dp.delta,
            "noise_multiplier": self.noise_multiplier,
            "clip": self.dp.clip,
            "sample_rate": self.schedule.sample_rate,
            "rounds": rounds,
            "sites": self.sites,
            "sites_per_round": sites_per_round,
            "noise_std": self.noise_std(sites_per_round),
            "accountant": f"{accountant_name()}, Gaussian mechanism per round, no amplification by sampling",
        }


@lru_cache(maxsize=16)
def open_client_account(dp: DPParams, rounds: int, sites: int) -> ClientAccount:
    """The federation's account over `rounds`, its noise calibrated to the target when the recipe asks for one; refuses a
    delta the number of sites cannot carry, and a fixed noise whose rounds would overspend the budget. Cached: the
    coordinator opens it to refuse an overspending recipe before the federation starts, the aggregator to train with."""
    if dp.delta * sites >= 1.0:
        raise PrivacyBudgetError(
            f"dp.delta {dp.delta:g} is not below 1 / the {sites} sites, so client-level DP would allow one site in "
            f"{1 / dp.delta:,.0f} to be revealed outright; choose dp.delta below {1 / sites:.1e}"
        )
    schedule = dp.client_schedule(rounds)
    target = dp.calibrate_to
    if target is None:
        sigma = dp.noise_multiplier or 0.0  # DPParams: no target means a noise_multiplier
    else:
        sigma = noise_for_epsilon(target, schedule.sample_rate, schedule.steps, dp.delta)
    account = ClientAccount(dp, schedule, sites, sigma)
    budget, spent = dp.epsilon, account.epsilon(rounds)
    if budget is not None and spent > budget * (1 + BUDGET_SLACK):
        fitting = _rounds_within(account, budget * (1 + BUDGET_SLACK), rounds)
        raise PrivacyBudgetError(
            f"client-level DP: {rounds} rounds at dp.noise_multiplier {sigma:g} would spend epsilon {spent:.3f} (delta "
            f"{dp.delta:g}), over the budget epsilon {budget:g}; {fitting} round(s) fit. Lower rounds, raise "
            "dp.noise_multiplier, or set dp.target_epsilon to calibrate the noise"
        )
    return account


def _rounds_within(account: ClientAccount, budget: float, rounds: int) -> int:
    """The most rounds, below `rounds`, whose epsilon stays within `budget` (epsilon grows with rounds: bisection)."""
    low, high = 0, rounds  # epsilon(low) <= budget < epsilon(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if account.epsilon(middle) <= budget else (low, middle)
    return low
