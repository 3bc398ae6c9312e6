"""A site's own privacy accountant: the noise it trains with, what it has spent, and its refusal to overspend.

The site, not the aggregator, keeps the account: it alone knows its row count (hence its sampling rate), and a
budget is only a promise if the party whose rows it protects enforces it. The account is a pure function of the
recipe's `dp` fields, the site's rows and the round, so a site that restarts (a new ClientApp process) reopens the
same account and a run repeats exactly.

Rounds are counted as if the site trained in every one of them: with `fraction_train` below 1 it trains in fewer,
so the epsilon stated is an upper bound on what it spent (epsilon only grows with steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from workbench.errors import WorkbenchError
from workbench.privacy.dp_params import DPParams, DPSchedule
from workbench.privacy.dp_sgd import PrivacySpent, epsilon, noise_for_epsilon

BUDGET_SLACK = 1e-9
"""Calibration lands at most at the target; this absorbs the accountant's last-digit float noise when it lands on it."""


class PrivacyBudgetError(WorkbenchError, ValueError):
    """A site would exceed its privacy budget, or its rows cannot carry the delta asked; the message names the site."""


@dataclass(frozen=True)
class SiteAccount:
    party: str
    dp: DPParams
    schedule: DPSchedule
    rows: int
    noise_multiplier: float

    def spent(self, rounds: int) -> PrivacySpent:
        """What the site has spent after `rounds` rounds of its schedule."""
        steps = rounds * self.schedule.steps_per_round
        return PrivacySpent(
            epsilon=epsilon(self.noise_multiplier, self.schedule.sample_rate, steps, self.dp.delta),
            delta=self.dp.delta,
            noise_multiplier=self.noise_multiplier,
            clip=self.dp.clip,
            sample_rate=self.schedule.sample_rate,
            steps=steps,
        )

    def allow(self, server_round: int) -> PrivacySpent:
        """What the site will have spent once it trains `server_round`; refuses, naming the site, when that is over budget."""
        after = self.spent(server_round)
        budget = self.dp.epsilon
        if budget is not None and after.epsilon > budget * (1 + BUDGET_SLACK):
            before = self.spent(server_round - 1).epsilon
            raise PrivacyBudgetError(
                f"site {self.party!r}: training round {server_round} would bring its epsilon to {after.epsilon:.3f} "
                f"(delta {self.dp.delta:g}), over the budget epsilon {budget:g}; it stopped after {server_round - 1} round(s) "
                f"at epsilon {before:.3f}. Raise dp.noise_multiplier, lower rounds, or set dp.target_epsilon to calibrate the noise"
            )
        return after


def open_account(party: str, dp: DPParams, schedule: DPSchedule, rows: int) -> SiteAccount:
    """The site's account, its noise calibrated to the target when the recipe asks for one (cached per process)."""
    return _open(party, dp, schedule, rows)


@lru_cache(maxsize=64)
def _open(party: str, dp: DPParams, schedule: DPSchedule, rows: int) -> SiteAccount:
    if dp.delta * rows >= 1.0:
        raise PrivacyBudgetError(
            f"site {party!r}: dp.delta {dp.delta:g} is not below 1 / its {rows} training rows, so the guarantee would allow "
            f"one row in {1 / dp.delta:,.0f} to be published outright; choose dp.delta below {1 / rows:.1e}"
        )
    target = dp.calibrate_to
    if target is None:
        return SiteAccount(party, dp, schedule, rows, dp.noise_multiplier or 0.0)  # DPParams: no target means a noise_multiplier
    return SiteAccount(party, dp, schedule, rows, noise_for_epsilon(target, schedule.sample_rate, schedule.steps, dp.delta))
