"""Client-level DP: Flower's own server-side fixed clipping in front of the study's rules, checked on a real federation.

The wrapper is watched, not replaced: each round's replies (before Flower clips them), the average it hands the noise,
and the model it releases are recorded, and the test recomputes the clipping, the equal weighting and the noise from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import RdpAccountant
from flwr.app import ArrayRecord, Message

from workbench.fl.client_dp import ClientLevelDP
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_embedded
from workbench.fl.server_app import FLOutcome
from workbench.privacy.dp_params import DPParams

SIGMA, CLIP, ROUNDS, DELTA = 0.8, 0.05, 40, 1e-3


def _flat(record: ArrayRecord) -> np.ndarray:
    return np.concatenate([array.ravel() for array in record.to_numpy_ndarrays()])


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Per round: the global model sent, each site's model as it arrived, the average before noise, the model released."""
    rounds: list[dict[str, Any]] = []
    aggregate, add_noise = ClientLevelDP.aggregate_train, ClientLevelDP._add_noise_to_aggregated_arrays

    def aggregate_train(self: ClientLevelDP, server_round: int, replies: Iterable[Message]) -> Any:
        replies = list(replies)
        sent = [_flat(reply.content.array_records["arrays"]) for reply in replies]
        rounds.append({"global": _flat(self.current_arrays), "sent": sent, "weights": [r.content["metrics"]["num-examples"] for r in replies]})
        arrays, metrics = aggregate(self, server_round, replies)
        rounds[-1]["released"] = _flat(arrays)
        return arrays, metrics

    def noised(self: ClientLevelDP, average: ArrayRecord) -> ArrayRecord:
        rounds[-1]["average"] = _flat(average)
        return add_noise(self, average)

    monkeypatch.setattr(ClientLevelDP, "aggregate_train", aggregate_train)
    monkeypatch.setattr(ClientLevelDP, "_add_noise_to_aggregated_arrays", noised)
    return rounds


def _client_plan(make_plan: Callable[..., FLPlan], **dp: Any) -> FLPlan:
    return make_plan(rounds=ROUNDS, dp=DPParams(level="client", delta=DELTA, clip=CLIP, **dp))


def test_each_update_is_clipped_the_sites_weigh_equally_and_the_noise_is_sigma_c_over_m(
    site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], watched: list[dict[str, Any]]
) -> None:
    outcome = run_embedded(_client_plan(make_plan, noise_multiplier=SIGMA), site_configs, lambda r, m: None, lambda t: None)
    assert len(watched) == ROUNDS
    noise, clipped_any = [], False
    for record in watched:
        updates = [sent - record["global"] for sent in record["sent"]]
        norms = np.linalg.norm(updates, axis=1)
        clipped_any |= bool((norms > CLIP).any())
        clipped = [u * min(1.0, CLIP / n) for u, n in zip(updates, norms)]
        # what Flower averaged: every site's update clipped to C, and the three weighed equally (not by rows: 600, 250, 120)
        np.testing.assert_allclose(record["average"], record["global"] + np.mean(clipped, axis=0), rtol=0, atol=1e-12)
        assert len(set(record["weights"])) == 3, "the sites sent their row counts, and the average above ignored them"
        noise.append(record["released"] - record["average"])
    assert clipped_any, "C is small enough that clipping binds"
    drawn = np.concatenate(noise)
    expected = SIGMA * CLIP / 3
    assert drawn.size == ROUNDS * 3 and abs(drawn.mean()) < 4 * expected / np.sqrt(drawn.size)
    assert 0.75 * expected < drawn.std() < 1.3 * expected  # 120 draws: the std is within 7 % of its value, 1 sd
    for before, after in zip(watched, watched[1:]):  # the noised model is the next round's global model
        np.testing.assert_array_equal(after["global"], before["released"])
    _states_what_it_spent(outcome, SIGMA)


def _states_what_it_spent(outcome: FLOutcome, sigma: float, sampled: int = 3) -> None:
    """The account is Flower's no-amplification model: one Gaussian mechanism of multiplier sigma per round, composed."""
    accountant = RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(sigma), ROUNDS)
    spent = outcome.client_dp
    assert spent is not None
    assert spent["epsilon"] == pytest.approx(accountant.get_epsilon(DELTA), rel=1e-9)
    assert (spent["level"], spent["noise_multiplier"], spent["clip"], spent["rounds"], spent["sites_per_round"]) == ("client", sigma, CLIP, ROUNDS, sampled)
    assert spent["noise_std"] == pytest.approx(sigma * CLIP / sampled) and spent["sample_rate"] == 1.0


def test_a_target_epsilon_is_met_by_calibrating_the_aggregators_noise(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    outcome = run_embedded(_client_plan(make_plan, epsilon=5.0), site_configs, lambda r, m: None, lambda t: None)
    assert outcome.client_dp is not None
    assert 5.0 * 0.99 < outcome.client_dp["epsilon"] <= 5.0
    _states_what_it_spent(outcome, outcome.client_dp["noise_multiplier"])
    assert all("dp-epsilon" not in metrics for sites in outcome.history.values() for metrics in sites.values()), "the sites keep no account"


def test_a_sampled_site_that_does_not_answer_fails_the_round(
    site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With min_available_clients 2 the study's quorum would train on without it; the noise, scaled to 3, would not be."""
    aggregate = ClientLevelDP.aggregate_train

    def losing_one(self: ClientLevelDP, server_round: int, replies: Iterable[Message]) -> Any:
        return aggregate(self, server_round, list(replies)[1:])

    monkeypatch.setattr(ClientLevelDP, "aggregate_train", losing_one)
    plan = _client_plan(make_plan, noise_multiplier=SIGMA).model_copy(update={"min_available_clients": 2})
    with pytest.raises(FederationError, match=r"round 1: 2 of the 3 sites asked sent an update; under client-level DP"):
        run_embedded(plan, site_configs, lambda r, m: None, lambda t: None)


def test_with_fraction_train_the_noise_is_scaled_to_the_sites_sampled_and_every_round_is_charged_in_full(
    site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]
) -> None:
    plan = _client_plan(make_plan, noise_multiplier=SIGMA).model_copy(update={"fraction_train": 0.5, "min_available_clients": 1})
    outcome = run_embedded(plan, site_configs, lambda r, m: None, lambda t: None)
    assert outcome.client_dp is not None
    _states_what_it_spent(outcome, SIGMA, sampled=2)  # the same epsilon as when every site trains: the sample follows the public seed
