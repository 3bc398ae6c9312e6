"""What a recipe says about differentially private training (`dp:` of fl_train and local_train), and the schedule it implies.

Kept apart from `dp_sgd` (numpy and the accountant) so `workbench validate` reads these fields without loading either.
The guarantee is per site: each hospital runs DP-SGD on its own rows and keeps its own accountant, so a site's
epsilon depends on its own sampling rate, and a small site, whose batches are a larger share of its rows, spends
more of the same budget. Calibrating the noise to a target is therefore done at each site, from its row count.

`level: client` is the second mode (fl_train only): the unit protected is a whole site, and the aggregator, trusted
with the updates, clips them and noises their average (`workbench.fl.client_dp`); its accountant is the only one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPENT_FIELDS = ("epsilon", "delta", "noise_multiplier", "clip", "sample_rate", "steps")
"""What a DP site states with every update, from its accountant after the round: enough to recompute its epsilon."""
PUBLIC_SCALING = "public bounds"
"""A DP site's `scaling` when the model scales by the recipe's features.bounds: the scaling read no row, and the
guarantee covers it (else the scaling came from moments of the rows, sent or used exact)."""
DP_METRIC_PREFIX = "dp-"
"""Where those figures travel among a site's training metrics (`dp-epsilon`, ...)."""
DPLevel = Literal["sample", "client"]


class DPParams(BaseModel):
    """Sample-level DP-SGD at each site, with a budget its accountant enforces; or, at level client, the aggregator's
    clipping and noising of the sites' updates (DP-FedAvg), with a budget the aggregator's accountant enforces."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    level: DPLevel = Field(
        "sample",
        description="What one unit of privacy is. sample: one patient row at a site, against everyone who sees what the site "
        "sent or what was trained from it, the aggregator included (each site runs DP-SGD with its own accountant). client: a "
        "whole site's participation, against anyone who sees the global model; the aggregator is trusted with the updates and "
        "adds the noise (Flower's server-side fixed clipping, McMahan et al. 2018). It suits hundreds of sites: with three, the "
        "noise on the average (noise_multiplier * clip / 3 per coordinate, every round) destroys the model. fl_train only.",
    )
    epsilon: float | None = Field(
        None,
        gt=0.0,
        le=1000.0,
        description="The budget: the epsilon no site may exceed over this step's training. A site refuses the round that would "
        "exceed it, and the run stops naming the site. Null: no budget (noise_multiplier must then be given).",
    )
    target_epsilon: float | None = Field(
        None,
        gt=0.0,
        le=1000.0,
        description="Calibrate each site's noise so that its whole training spends this epsilon (default: the budget).",
    )
    noise_multiplier: float | None = Field(
        None,
        gt=0.0,
        le=1e4,
        description="sigma, the noise standard deviation in units of clip, instead of calibrating it; the epsilon spent is then "
        "what the accountant says, and the budget (if any) stops training when the next round would exceed it.",
    )
    delta: float = Field(1e-5, gt=0.0, le=0.01, description="delta of the (epsilon, delta) guarantee; it must lie below 1 / (a site's rows).")
    clip: float = Field(
        1.0,
        gt=0.0,
        le=1e4,
        description="C: each row's gradient is clipped to this L2 norm, so one row moves a sum by at most C; at level client, each "
        "site's update (its model minus the global model it started from) is clipped to it, so one site moves the sum by at most C.",
    )
    noise: Literal["secret", "seeded"] = Field(
        "secret",
        description="Where the batches and noise come from. secret: the operating system's randomness at each site (at the "
        "aggregator, for level client), so no party can recompute the noise from the recipe and subtract it; a rerun gives "
        "another model. seeded: the recipe seed, so a run repeats exactly, for teaching and tests; then every party that "
        "knows the recipe can remove the noise, and the guarantee holds only against outsiders who do not know the seed.",
    )
    sampling: Literal["poisson"] = Field("poisson", description="How batches are drawn: every row independently with probability q, as the accountant assumes.")
    sample_rate: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="q; null: batch_size / (the site's training rows), or 1 (every row, every step) without a batch size. Sample "
        "level only: at level client, fraction_train says which share of sites trains each round.",
    )

    @model_validator(mode="after")
    def _one_way_to_noise(self) -> Self:
        if self.noise_multiplier is not None and self.target_epsilon is not None:
            raise ValueError("give noise_multiplier or target_epsilon, not both: the one fixes the other")
        if self.noise_multiplier is None and self.target_epsilon is None and self.epsilon is None:
            raise ValueError("dp needs a budget (epsilon), a target_epsilon or a noise_multiplier")
        if self.target_epsilon is not None and self.epsilon is not None and self.target_epsilon > self.epsilon:
            raise ValueError(f"target_epsilon {self.target_epsilon:g} exceeds the budget epsilon {self.epsilon:g}")
        if self.level == "client" and self.noise == "seeded":
            raise ValueError("at level client Flower's wrapper draws the noise itself, from the operating system: dp.noise must be secret")
        if self.level == "client" and self.sample_rate is not None:
            raise ValueError(
                "sample_rate is the share of a site's rows in one DP-SGD batch (level sample); at level client the sites sampled "
                "each round are fraction_train's, and the accountant charges every round in full (see docs/privacy.md)"
            )
        return self

    @property
    def seeded(self) -> bool:
        """Whether batches and noise are drawn from the recipe seed (reproducible, and recomputable by every party)."""
        return self.noise == "seeded"

    @property
    def calibrate_to(self) -> float | None:
        """The epsilon a site's noise is calibrated to, or None when the recipe fixes the noise."""
        return None if self.noise_multiplier is not None else (self.target_epsilon or self.epsilon)

    def client_schedule(self, rounds: int) -> DPSchedule:
        """Level client: each round releases one noised average, a Gaussian mechanism with the whole noise multiplier.

        No amplification by sampling (q = 1) whatever fraction_train is: the sites sampled each round are drawn from the
        recipe's seed, which every party knows, and amplification needs a secret sample. Flower's own accountant for this
        wrapper takes the same view (it accepts only `no-amplification`). A site that sits a round out spends nothing in
        it, so the epsilon stated is an upper bound for each site, tight for a site that trains every round.
        """
        return DPSchedule(sample_rate=1.0, steps_per_round=1, rounds=rounds)

    def schedule(self, rows: int, batch_size: int | None, epochs_per_round: int, rounds: int) -> DPSchedule:
        """A site's sampling rate and step counts, from its training rows: the same passes over the data non-private SGD makes."""
        q = self.sample_rate if self.sample_rate is not None else min(1.0, batch_size / rows) if batch_size else 1.0
        return DPSchedule(sample_rate=q, steps_per_round=epochs_per_round * math.ceil(1.0 / q - 1e-9), rounds=rounds)


class LocalDPParams(DPParams):
    """local_train fits by L-BFGS without DP; with DP it runs DP-SGD, so it needs a schedule of its own."""

    steps: int = Field(300, ge=1, le=1_000_000, description="DP-SGD steps (each over one Poisson batch).")
    learning_rate: float = Field(0.5, gt=0.0, le=100.0, description="DP-SGD step size.")

    @model_validator(mode="after")
    def _sample_level(self) -> Self:
        if self.level != "sample":
            raise ValueError(
                "local_train protects rows: dp.level must be sample. Client-level DP protects a whole site's participation in "
                "a federation, and a site training alone has nothing to hide it among (use it in fl_train)"
            )
        return self

    def local_schedule(self) -> DPSchedule:
        """All of local training as one 'round' of `steps` steps, at q = sample_rate or 1."""
        return DPSchedule(sample_rate=self.sample_rate or 1.0, steps_per_round=self.steps, rounds=1)


@dataclass(frozen=True)
class DPSchedule:
    sample_rate: float
    steps_per_round: int
    rounds: int

    @property
    def steps(self) -> int:
        return self.steps_per_round * self.rounds


def largest_epsilon(published: Mapping[str, Any]) -> float | None:
    """The largest epsilon in a step's published `dp`, in either shape: client level's one account
    (`{level: client, epsilon, ...}`), or sample level's account per site (`{site: {epsilon, ...}}`); None if unstated."""
    if is_client_level(published):
        value = published.get("epsilon")
        return float(value) if isinstance(value, int | float) else None
    values = [float(f["epsilon"]) for f in published.values() if isinstance(f, Mapping) and isinstance(f.get("epsilon"), int | float)]
    return max(values, default=None)


def is_client_level(published: Mapping[str, Any]) -> bool:
    """Whether a published `dp` is client level's single account rather than sample level's per-site accounts."""
    return bool(published.get("level") == "client")


def dp_spent(history: Mapping[int, Mapping[str, Mapping[str, float | None]]]) -> dict[str, dict[str, Any]]:
    """Each DP site's privacy spent, as it stated with its last update (rounds -> party -> metrics); {} without DP."""
    spent: dict[str, dict[str, Any]] = {}
    for server_round in sorted(history):
        for party, metrics in history[server_round].items():
            if metrics.get(DP_METRIC_PREFIX + "epsilon") is not None:
                spent[party] = {name: metrics[DP_METRIC_PREFIX + name] for name in SPENT_FIELDS} | {"rounds": server_round}
    if spent:
        from workbench.privacy.dp_sgd import accountant_name

        for figures in spent.values():
            figures["steps"] = int(figures["steps"])
            figures["accountant"] = accountant_name()
    return spent
