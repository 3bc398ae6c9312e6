from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.special import expit, gammaln, logsumexp

from workbench.models.logistic import Logistic
from workbench.models.metrics import roc_auc
from workbench.models.mlp import MLP
from workbench.models.model import Family, fit_full, sgd_epochs
from workbench.privacy.dp_sgd import DPSGDConfig, PrivacySpent, dp_sgd_epochs, epsilon, noise_for_epsilon, noisy_clipped_sum, poisson_batch

DELTA = 1e-5

# The accountant.


def _integer_order_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """An independent RDP computation over integer orders 2..256 only, written from the papers, not from dp-accounting.

    For integer alpha the Poisson-subsampled Gaussian has RDP log(A_alpha) / (alpha - 1), with
    A_alpha = sum_k C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2)) (Mironov, Talwar &
    Zhang 2019, section 3.3); composition adds it up over steps, and the conversion to (epsilon,
    delta) is Canonne, Kamath & Steinke 2020's. With fewer orders to choose from it can only be as
    large or larger than the library's answer.
    """
    best = math.inf
    for alpha in range(2, 257):
        k = np.arange(alpha + 1)
        log_binomial = gammaln(alpha + 1) - gammaln(k + 1) - gammaln(alpha - k + 1)
        log_a = logsumexp(log_binomial + (alpha - k) * math.log1p(-sample_rate) + k * math.log(sample_rate) + (k * k - k) / (2 * noise_multiplier**2))
        rdp = steps * log_a / (alpha - 1)
        best = min(best, rdp + math.log1p(-1 / alpha) - math.log(delta * alpha) / (alpha - 1))
    return best


def test_abadi_mnist_setting_agrees_with_the_library_and_an_independent_computation() -> None:
    """q = 0.01, sigma = 1.1, 10,000 steps (100 epochs of MNIST-sized data at batch 600), delta = 1e-5."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    ours = epsilon(1.1, 0.01, 10_000, DELTA)
    direct = RdpAccountant().compose(dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(1.1)), 10_000).get_epsilon(DELTA)
    independent = _integer_order_epsilon(1.1, 0.01, 10_000, DELTA)
    assert ours == pytest.approx(direct, rel=1e-12)
    assert ours <= independent <= 1.01 * ours  # fractional orders (4.7 here) can only help, and only a little
    assert ours == pytest.approx(5.632, abs=0.005)  # as computed with dp-accounting 0.6.0; the integer orders give 5.654


def test_epsilon_grows_with_steps_and_sample_rate_and_falls_with_noise() -> None:
    by_steps = [epsilon(1.1, 0.01, steps, DELTA) for steps in (100, 1_000, 10_000)]
    by_noise = [epsilon(sigma, 0.01, 1_000, DELTA) for sigma in (0.8, 1.1, 2.0)]
    by_rate = [epsilon(1.1, q, 1_000, DELTA) for q in (0.001, 0.01, 0.1)]
    assert by_steps == sorted(by_steps) and len(set(by_steps)) == 3
    assert by_noise == sorted(by_noise, reverse=True) and len(set(by_noise)) == 3
    assert by_rate == sorted(by_rate) and len(set(by_rate)) == 3


def test_no_noise_is_no_privacy_and_no_steps_spend_nothing() -> None:
    assert epsilon(0.0, 0.01, 100, DELTA) == math.inf
    assert epsilon(1.0, 0.01, 0, DELTA) == 0.0
    assert noise_for_epsilon(math.inf, 0.01, 100, DELTA) == 0.0


@pytest.fixture(scope="module")
def sigma_for_4() -> float:
    """Calibrated once (about a dozen accountant evaluations) for the round trip and the utility test."""
    return noise_for_epsilon(4.0, 0.02, 500, DELTA)


def test_noise_for_epsilon_round_trips_just_below_the_target(sigma_for_4: float) -> None:
    spent = epsilon(sigma_for_4, 0.02, 500, DELTA)
    assert 0.99 * 4.0 <= spent <= 4.0
    assert epsilon(sigma_for_4 * (1 - 1e-3), 0.02, 500, DELTA) > 4.0  # and it is the least noise that stays within budget


def test_config_validates_and_reports_what_it_spent() -> None:
    config = DPSGDConfig(clip=1.0, noise_multiplier=1.1, sample_rate=0.01, steps=10_000, delta=DELTA)
    record = config.spent().to_dict()
    assert record == {
        "epsilon": pytest.approx(5.632, abs=0.005),
        "delta": DELTA,
        "noise_multiplier": 1.1,
        "clip": 1.0,
        "sample_rate": 0.01,
        "steps": 10_000,
        "accountant": "RDP (dp-accounting 0.6.0)",
    }
    assert DPSGDConfig(clip=1.0, noise_multiplier=0.0, sample_rate=0.5, steps=3, delta=DELTA).spent().to_dict()["epsilon"] is None  # inf is no JSON
    assert isinstance(config.spent(), PrivacySpent)
    for bad in ({"clip": 0.0}, {"noise_multiplier": -1.0}, {"sample_rate": 0.0}, {"sample_rate": 1.5}, {"steps": 0}, {"delta": 1.0}, {"clip": math.inf}):
        with pytest.raises(ValidationError):
            DPSGDConfig(**{"clip": 1.0, "noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 10, "delta": DELTA, **bad})


# Training.


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 5))
    y = (rng.random(n) < expit(Z @ np.array([1.0, -0.8, 0.5, 0.3, -0.2]) - 1.0)).astype(float)
    return Z, y


@pytest.mark.parametrize("family", [pytest.param(Logistic(), id="logistic"), pytest.param(MLP(4), id="mlp")])
@pytest.mark.parametrize(("l2", "proximal_mu"), [(0.0, 0.0), (0.05, 0.3)])
def test_without_noise_or_clipping_and_with_every_row_it_is_full_batch_gradient_descent(family: Family, l2: float, proximal_mu: float) -> None:
    Z, y = _data(300)
    start = family.init_params(5, np.random.default_rng(1))
    settings = {"l2": l2, "learning_rate": 0.3, "proximal_mu": proximal_mu}
    private = dp_sgd_epochs(family, start, Z, y, steps=25, sample_rate=1.0, clip=1e12, noise_multiplier=0.0, rng=np.random.default_rng(2), **settings)
    plain = sgd_epochs(family, start, Z, y, epochs=25, batch_size=None, rng=np.random.default_rng(3), **settings)
    np.testing.assert_allclose(private, plain, rtol=0, atol=1e-10)
    assert not np.allclose(private, start)


def test_a_tiny_clip_bounds_every_step_by_the_realised_batch() -> None:
    """Every row's gradient exceeds C = 1e-3, so each contributes exactly C: a step moves at most lr C B / (q n)."""
    Z, y = _data(400)
    family, learning_rate, clip, q = Logistic(), 0.5, 1e-3, 0.05
    rng, twin = np.random.default_rng(4), np.random.default_rng(4)  # with no noise, a step draws only its batch, so the twin sees the same batches
    params = np.zeros(6)
    sizes = []
    for _ in range(20):
        size = len(poisson_batch(len(y), q, twin))
        after = dp_sgd_epochs(family, params, Z, y, l2=0.0, learning_rate=learning_rate, steps=1, sample_rate=q, clip=clip, noise_multiplier=0.0, rng=rng)
        assert np.linalg.norm(after - params) <= learning_rate * clip * size / (q * len(y)) * (1 + 1e-12)
        params, sizes = after, [*sizes, size]
    assert len(set(sizes)) > 1  # Poisson sampling: the batch size varies


def test_one_row_moves_the_clipped_sum_by_at_most_the_clip_norm() -> None:
    grads = np.random.default_rng(5).normal(0.0, 10.0, size=(50, 8))
    rng = np.random.default_rng(0)
    with_row = noisy_clipped_sum(grads, clip=2.0, noise_multiplier=0.0, rng=rng)
    for row in range(len(grads)):
        without = noisy_clipped_sum(np.delete(grads, row, axis=0), clip=2.0, noise_multiplier=0.0, rng=rng)
        assert np.linalg.norm(with_row - without) == pytest.approx(2.0)  # every row here is clipped, so exactly C
    small = np.full((3, 8), 0.1)
    np.testing.assert_array_equal(noisy_clipped_sum(small, clip=2.0, noise_multiplier=0.0, rng=rng), small.sum(axis=0))  # short gradients are untouched
    assert noisy_clipped_sum(np.zeros((0, 8)), clip=2.0, noise_multiplier=0.0, rng=rng).shape == (8,)  # an empty batch sums to zero


class _Flat:
    """A family whose loss is flat everywhere: every change DP-SGD makes to its parameters is noise."""

    name = "flat"

    def __init__(self, size: int) -> None:
        self.size = size

    def init_params(self, n_inputs: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(self.size)

    def loss_and_grad(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        return 0.0, np.zeros_like(params)

    def per_example_grads(self, params: np.ndarray, Z: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.zeros((len(y), params.size))

    def penalty_grad(self, params: np.ndarray, l2: float) -> np.ndarray:
        return np.zeros_like(params)

    def predict_proba(self, params: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return np.full(len(Z), 0.5)

    def param_names(self, inputs: list[str]) -> list[str]:
        return [f"p{i}" for i in range(self.size)]


def test_noise_has_the_standard_deviation_the_accountant_assumes() -> None:
    """Each step adds lr * N(0, sigma^2 C^2) / (q n) per coordinate; over 4 steps the standard deviation doubles.

    With 20,000 coordinates the sample standard deviation is within 0.5 % of the true one (one
    standard error), so a 3 % tolerance is six standard errors wide.
    """
    size, n, q, sigma, clip, learning_rate, steps = 20_000, 1_000, 0.1, 1.3, 0.7, 0.5, 4
    change = dp_sgd_epochs(
        _Flat(size),
        np.zeros(size),
        np.zeros((n, 1)),
        np.zeros(n),
        l2=0.0,
        learning_rate=learning_rate,
        steps=steps,
        sample_rate=q,
        clip=clip,
        noise_multiplier=sigma,
        rng=np.random.default_rng(6),
    )
    expected = learning_rate * sigma * clip / (q * n) * math.sqrt(steps)
    assert change.std() == pytest.approx(expected, rel=0.03)
    assert abs(change.mean()) < 5 * expected / math.sqrt(size)


def test_utility_at_epsilon_4_is_close_to_the_non_private_fit(sigma_for_4: float) -> None:
    """5,000 training rows, 5 features: at epsilon 4, delta 1e-5, logistic DP-SGD ranks held-out rows almost as well."""
    Z, y = _data(10_000, seed=7)
    train, test = slice(0, 5_000), slice(5_000, None)
    family = Logistic()
    baseline = fit_full(family, Z[train], y[train], 1e-4, np.zeros(6))
    private = dp_sgd_epochs(
        family,
        np.zeros(6),
        Z[train],
        y[train],
        l2=1e-4,
        learning_rate=1.0,
        steps=500,
        sample_rate=0.02,
        clip=1.0,
        noise_multiplier=sigma_for_4,
        rng=np.random.default_rng(8),
    )
    auc_baseline, auc_private = roc_auc(y[test], family.predict_proba(baseline, Z[test])), roc_auc(y[test], family.predict_proba(private, Z[test]))
    assert auc_baseline is not None and auc_private is not None and auc_baseline > 0.75
    assert auc_private > auc_baseline - 0.05
    assert epsilon(sigma_for_4, 0.02, 500, DELTA) <= 4.0


@pytest.mark.parametrize("family", [pytest.param(Logistic(), id="logistic"), pytest.param(MLP(4), id="mlp")])
def test_the_same_seed_repeats_the_run(family: Family) -> None:
    Z, y = _data(300)
    start = family.init_params(5, np.random.default_rng(1))

    def run(seed: int) -> np.ndarray:
        return dp_sgd_epochs(
            family, start, Z, y, l2=0.01, learning_rate=0.5, steps=30, sample_rate=0.1, clip=1.0, noise_multiplier=1.0, rng=np.random.default_rng(seed)
        )

    np.testing.assert_array_equal(run(9), run(9))
    assert not np.array_equal(run(9), run(10))


def test_bad_arguments_are_refused() -> None:
    Z, y = _data(10)
    settings = {"l2": 0.0, "learning_rate": 0.1, "steps": 1, "sample_rate": 0.5, "clip": 1.0, "noise_multiplier": 1.0, "rng": np.random.default_rng(0)}
    for bad in ({"clip": 0.0}, {"noise_multiplier": -0.1}, {"sample_rate": 0.0}, {"sample_rate": 1.1}, {"steps": -1}):
        with pytest.raises(ValueError):
            dp_sgd_epochs(Logistic(), np.zeros(6), Z, y, **{**settings, **bad})
    with pytest.raises(ValueError):
        epsilon(1.0, 0.01, 10, 0.0)
    with pytest.raises(ValueError):
        noise_for_epsilon(0.0, 0.01, 10, DELTA)
