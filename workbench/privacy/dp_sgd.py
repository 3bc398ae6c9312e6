"""Sample-level differentially private training: DP-SGD (Abadi et al., CCS 2016) and its privacy accounting.

DP-SGD bounds how much any one training row can change the trained model, then hides that
bounded change under Gaussian noise. Each step:

1. samples a batch by Poisson sampling: every row independently with probability q;
2. computes each sampled row's gradient and clips it to L2 norm at most C (the row's sensitivity);
3. sums the clipped gradients and adds N(0, sigma^2 C^2) noise to every coordinate;
4. divides by the expected batch size q * n, adds the gradient of the data-free terms (the l2
   penalty, FedProx's proximal term), and takes a gradient step.

Each step is then a Poisson-subsampled Gaussian mechanism with noise multiplier sigma, and
`steps` of them compose. The accountant (Google's dp-accounting, Renyi DP, Mironov 2017 and
Mironov, Talwar & Zhang 2019) turns (sigma, q, steps) into the epsilon of an (epsilon, delta)
guarantee for the add-or-remove-one-row neighbouring relation. The guarantee covers the whole
sequence of parameters, so it covers the released model and anything computed from it alone.

What it does not cover: the choice of hyperparameters (C, learning rate, steps) if they were tuned
on the same data, the standardizer's centre and scale if they were fitted on the same rows without
noise, and any row that appears more than once (the unit protected is a row, not a person).

Everything here is numpy and the accountant: no recipe, party or ledger concerns. dp-accounting
is imported inside the functions that use it, since it loads absl and friends.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from workbench.models.features import FeatureSpec
    from workbench.models.model import Family, Model, ModelSpec
    from workbench.privacy.dp_params import DPParams, LocalDPParams

CALIBRATION_TOLERANCE = 1e-4
"""Relative tolerance on sigma when calibrating it to a target epsilon.

The calibration returns a sigma whose epsilon is at most the target (never above it) and within
this fraction of the smallest such sigma; that moves epsilon by well under a percent, in far
fewer accountant evaluations than dp-accounting's default absolute tolerance of 1e-6.
"""

_BRACKET_FACTOR = 1.5
"""Calibration first brackets sigma between two values this factor apart, moving out from sigma = 1.

Small steps keep the search away from very small sigma, where the accountant's fractional orders
converge slowly (seconds per evaluation) and log warnings, unless the target epsilon needs them.
"""


def accountant_name() -> str:
    from importlib.metadata import version

    return f"RDP (dp-accounting {version('dp-accounting')})"


class DPSGDConfig(BaseModel):
    """The parameters that determine DP-SGD's privacy guarantee, and nothing else.

    The learning rate, the l2 penalty and the model family change utility, not privacy: the
    guarantee depends only on how rows are sampled (q), how far one row can move the sum (C),
    how much noise covers it (sigma, in units of C) and how often that happens (steps).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    clip: float = Field(gt=0.0, description="C: the L2 norm each row's gradient is clipped to.")
    noise_multiplier: float = Field(ge=0.0, le=1e6, description="sigma: noise standard deviation per coordinate, in units of C. 0 gives no privacy.")
    sample_rate: float = Field(gt=0.0, le=1.0, description="q: the probability each row joins each step's batch (Poisson sampling).")
    steps: int = Field(ge=1, le=10_000_000, description="Number of noised gradient steps.")
    delta: float = Field(gt=0.0, lt=1.0, description="delta of the (epsilon, delta) guarantee; well below 1 / rows.")

    def epsilon(self) -> float:
        return epsilon(self.noise_multiplier, self.sample_rate, self.steps, self.delta)

    def spent(self) -> PrivacySpent:
        return PrivacySpent(
            epsilon=self.epsilon(),
            delta=self.delta,
            noise_multiplier=self.noise_multiplier,
            clip=self.clip,
            sample_rate=self.sample_rate,
            steps=self.steps,
        )


@dataclass(frozen=True)
class PrivacySpent:
    """What a DP-SGD run spent, with everything needed to recompute it: a report states all of it."""

    epsilon: float
    delta: float
    noise_multiplier: float
    clip: float
    sample_rate: float
    steps: int
    accountant: str = field(default_factory=accountant_name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: an infinite epsilon (no noise, so no guarantee) becomes None, as metrics.json allows no Infinity."""
        record = asdict(self)
        if not math.isfinite(self.epsilon):
            record["epsilon"] = None
        return record


# Accounting.


def _check_accounting(sample_rate: float, steps: int, delta: float) -> None:
    if not 0.0 < sample_rate <= 1.0:
        raise ValueError(f"the sample rate must lie in (0, 1], got {sample_rate}")
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")


def _dp_event(noise_multiplier: float, sample_rate: float, steps: int) -> Any:
    """DP-SGD as the accountant sees it: `steps` Poisson-subsampled Gaussian mechanisms, composed."""
    import dp_accounting

    return dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)), steps)


def _fresh_accountant() -> Any:
    """Renyi DP over dp-accounting's default orders, for adding or removing one row (what Poisson sampling is analysed for)."""
    from dp_accounting.rdp import RdpAccountant

    return RdpAccountant()


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """The epsilon of DP-SGD's (epsilon, delta) guarantee, by the RDP accountant.

    RDP composes tightly over thousands of steps and converts to (epsilon, delta) at the end
    (with the conversion of Canonne, Kamath & Steinke 2020). A PLD accountant would be a little
    tighter still, but RDP is what DP-SGD results are usually reported with, so figures compare.
    sigma = 0 adds no noise: there is no finite epsilon, and the answer is inf.
    """
    _check_accounting(sample_rate, steps, delta)
    if not noise_multiplier >= 0.0:
        raise ValueError(f"the noise multiplier must be non-negative, got {noise_multiplier}")
    if steps == 0:
        return 0.0
    if noise_multiplier == 0.0:
        return math.inf
    from dp_accounting.rdp import rdp_privacy_accountant as rdp

    value, _ = rdp.compute_epsilon(rdp.DEFAULT_RDP_ORDERS, steps * np.asarray(_step_rdp(noise_multiplier, sample_rate)), delta)
    return float(value)


@lru_cache(maxsize=1024)
def _step_rdp(noise_multiplier: float, sample_rate: float) -> tuple[float, ...]:
    """The RDP of one Poisson-subsampled Gaussian step at each of dp-accounting's default orders.

    RDP composes by adding, so `steps` steps cost `steps` times this: what `RdpAccountant` computes for a
    self-composed event, but computed once per (sigma, q). A site states its epsilon after every round, and at a
    large q the fractional orders take a second or so each time; with the vector kept, each round's epsilon is one
    conversion. The function is dp-accounting's own (private, so the version is pinned and
    `tests/privacy/test_dp_sgd.py` holds `epsilon` equal to `RdpAccountant`'s).
    """
    from dp_accounting.rdp import rdp_privacy_accountant as rdp

    values = rdp._compute_rdp_poisson_subsampled_gaussian(sample_rate, noise_multiplier, rdp.DEFAULT_RDP_ORDERS)
    return tuple(float(value) for value in np.atleast_1d(values))


def noise_for_epsilon(target_epsilon: float, sample_rate: float, steps: int, delta: float) -> float:
    """The smallest noise multiplier (to CALIBRATION_TOLERANCE) whose epsilon is at most `target_epsilon`.

    Calibrating the noise, rather than the number of steps, is how a budget is usually spent: the
    training schedule stays what utility wants. dp-accounting's calibration (Brent's method, then a
    check) guarantees the returned sigma never overshoots the budget. An infinite target needs no
    noise and gets 0.
    """
    _check_accounting(sample_rate, steps, delta)
    if not target_epsilon > 0.0:
        raise ValueError(f"the target epsilon must be positive, got {target_epsilon}")
    if math.isinf(target_epsilon) or steps == 0:
        return 0.0
    import dp_accounting

    def too_much(noise_multiplier: float) -> bool:
        return epsilon(noise_multiplier, sample_rate, steps, delta) > target_epsilon

    low = high = 1.0  # epsilon falls as sigma grows: find low with too much epsilon and high = low * factor within budget
    if too_much(high):
        while too_much(high):
            low, high = high, high * _BRACKET_FACTOR
    else:
        while not too_much(low):
            low, high = low / _BRACKET_FACTOR, low
    sigma = dp_accounting.calibrate_dp_mechanism(
        _fresh_accountant,
        lambda noise_multiplier: _dp_event(noise_multiplier, sample_rate, steps),
        target_epsilon,
        delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(low, high),
        tol=CALIBRATION_TOLERANCE * low,
    )
    return float(sigma)


# Training.


def noise_rng(dp: DPParams, seeded: np.random.Generator) -> np.random.Generator:
    """The generator DP-SGD draws its batches and noise from: the operating system's unless the recipe asks for `seeded`.

    Noise that every party can recompute from the recipe's seed can be subtracted from the update it hides, and a Poisson
    sample every party can recompute gives no amplification: the guarantee would hold against outsiders only. So by
    default the randomness is fresh, as PSI keys and CKKS randomness are, and a rerun trains another model.
    """
    return seeded if dp.seeded else np.random.default_rng()


def poisson_batch(n_rows: int, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one Poisson-sampled batch: each row in with probability q, independently.

    This is the sampling the accountant's amplification-by-subsampling bound assumes. Shuffled
    fixed-size batches are what non-private SGD uses, but accounting for them as Poisson would
    overstate the privacy. The batch size therefore varies from step to step and may be 0.
    Draws exactly n_rows uniforms from `rng`.
    """
    return np.flatnonzero(rng.random(n_rows) < sample_rate)


def noisy_clipped_sum(grads: np.ndarray, *, clip: float, noise_multiplier: float, rng: np.random.Generator) -> np.ndarray:
    """Sum of per-row gradients each clipped to L2 norm <= C, plus N(0, sigma^2 C^2) noise per coordinate.

    Clipping scales a row's gradient by min(1, C / |g|), which keeps its direction, so a row
    whose gradient is already small is untouched. Adding or removing a row then moves the sum by
    at most C in L2 norm, and noise of standard deviation sigma * C is what the Gaussian
    mechanism with noise multiplier sigma needs. The noise is drawn even for an empty batch: whether
    a batch is empty depends on the data too.
    """
    norms = np.linalg.norm(grads, axis=1)
    total: np.ndarray = (clip / np.maximum(norms, clip)) @ grads  # = sum of min(1, C/|g|) g, with |g| = 0 left as is
    if noise_multiplier > 0.0:
        total = total + rng.normal(0.0, noise_multiplier * clip, total.shape)
    return total


def dp_sgd_epochs(
    family: Family,
    params: np.ndarray,
    Z: np.ndarray,
    y: np.ndarray,
    *,
    l2: float,
    learning_rate: float,
    steps: int,
    sample_rate: float,
    clip: float,
    noise_multiplier: float,
    rng: np.random.Generator,
    proximal_mu: float = 0.0,
) -> np.ndarray:
    """DP-SGD from `params`: `steps` noised steps on Poisson batches; with proximal_mu > 0, FedProx's local objective.

    The counterpart of `models.model.sgd_epochs`, with the choices that make the accountant's
    guarantee hold:
    - Poisson sampling (see `poisson_batch`), not shuffled batches;
    - per-row clipping and Gaussian noise on the sum (see `noisy_clipped_sum`);
    - the noised sum is divided by the *expected* batch size q * n, not the realised one: the
      realised size depends on whether a given row was sampled, so dividing by it would let one
      row change the update by more than C / (q n) and void the sensitivity bound (n itself is
      taken as public: sites publish their row counts anyway, for weighting);
    - the l2 penalty's and the proximal term's gradients are added after the noise, unclipped:
      they read no data (the anchor is the model received, which is public to this site), so
      they cost no privacy and clipping them would only bias the optimum.
    The guarantee for these arguments is `epsilon(noise_multiplier, sample_rate, steps, delta)`.
    It protects the rows of (Z, y); the steps count is the privacy budget's unit, so one epoch is
    about 1 / q steps. `rng` draws both the batches and the noise: the same seed repeats the run.
    """
    if not clip > 0.0:
        raise ValueError(f"the clip norm must be positive, got {clip}")
    if not noise_multiplier >= 0.0:
        raise ValueError(f"the noise multiplier must be non-negative, got {noise_multiplier}")
    if not 0.0 < sample_rate <= 1.0:
        raise ValueError(f"the sample rate must lie in (0, 1], got {sample_rate}")
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if len(y) == 0:
        raise ValueError("DP-SGD needs at least one row")
    anchor = params.copy()
    params = params.astype(np.float64, copy=True)
    expected_batch = sample_rate * len(y)
    for _ in range(steps):
        batch = poisson_batch(len(y), sample_rate, rng)
        grads = family.per_example_grads(params, Z[batch], y[batch])
        grad = noisy_clipped_sum(grads, clip=clip, noise_multiplier=noise_multiplier, rng=rng) / expected_batch
        if l2:
            grad = grad + family.penalty_grad(params, l2)
        if proximal_mu:
            grad = grad + proximal_mu * (params - anchor)
        params -= learning_rate * grad
    return params


def fit_dp_model(
    X: np.ndarray, y: np.ndarray, features: FeatureSpec, spec: ModelSpec, dp: LocalDPParams, party: str, rng: np.random.Generator
) -> tuple[Model, dict[str, Any]]:
    """A site's model by DP-SGD on its own rows, within its budget; with the privacy spent, as the report states it.

    Without public bounds the standardizer is fitted on the same rows without noise (as `fit_model`'s): the report then
    says it is not covered.
    """
    from workbench.models.model import Model
    from workbench.models.standardize import Standardizer
    from workbench.privacy.dp_params import PUBLIC_SCALING
    from workbench.privacy.site_account import open_account

    standardizer, family = Standardizer.for_features(features, X), spec.build()
    account = open_account(party, dp, dp.local_schedule(), len(y))
    spent = account.allow(1)
    params = dp_sgd_epochs(
        family,
        family.init_params(X.shape[1], rng),  # data-free: from the seed, even when the noise is secret
        standardizer.apply(X),
        y,
        l2=spec.l2,
        learning_rate=dp.learning_rate,
        steps=dp.steps,
        sample_rate=account.schedule.sample_rate,
        clip=dp.clip,
        noise_multiplier=account.noise_multiplier,
        rng=noise_rng(dp, rng),
    )
    scaling = {"scaling": PUBLIC_SCALING if features.public_scaling else "the site's own moments", "noise": dp.noise}
    return Model(features, spec, standardizer, params), spent.to_dict() | scaling
