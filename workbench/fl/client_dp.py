"""Client-level DP (`dp.level: client`): Flower's own server-side fixed-clipping wrapper, in front of the study's strategy.

DP-FedAvg (McMahan et al. 2018) as Flower 1.41 implements it (`DifferentialPrivacyServerSideFixedClipping`): each
round the aggregator clips every site's update (its model minus the global model it was sent) to L2 norm C, lets the
wrapped strategy average the clipped models, and adds N(0, (sigma C / m)^2) to every coordinate of the average, m being
the number of sites sampled. The sum of the clipped updates moves by at most C when one site's update is added or
removed, so each round is a Gaussian mechanism with noise multiplier sigma, and `ClientAccount` composes the rounds.

Three things the wrapper alone leaves open, and this module closes, for that account to be true:
- the average must weigh every site equally: FedAvg weighs by rows, and a site with 40 % of the rows would move the
  average by 0.4 C, not C / m; so each reply's weight is set to 1 before Flower averages;
- the noise must be scaled to the sites actually averaged: m is the number asked this round, and every one of them
  must answer (the average of m - 1 updates noised for m has less noise than the account assumes); otherwise the round
  fails;
- the study's quorum rules must still see error replies (the wrapper would silently skip aggregating a round with one).

The noise comes from numpy's global generator, unseeded, as Flower draws it: a party that knows the recipe's seed cannot
recompute it, and a rerun does not repeat it. What it does not cover: the aggregator sees every update in the clear (it
is trusted to add the noise), and the per-site training and evaluation metrics it publishes are not noised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping

from workbench.fl.errors import FederationError
from workbench.fl.strategy import StudyRules
from workbench.privacy.client_account import ClientAccount


class ClientLevelDP(DifferentialPrivacyServerSideFixedClipping):
    """Flower's server-side fixed clipping around `StudyRules` (and the Flower strategy behind it); see the module docstring."""

    def __init__(self, rules: StudyRules, account: ClientAccount) -> None:
        super().__init__(rules, account.noise_multiplier, account.dp.clip, num_sampled_clients=len(rules.plan.parties))
        self.rules = rules
        self.account = account
        self.sampled: dict[int, int] = {}
        """Round -> number of sites asked to train (the m the noise was scaled to)."""

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.num_sampled_clients = self.sampled[server_round] = len(messages)
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        good = self.rules.check_quorum(server_round, list(replies), "training")
        if len(good) != self.num_sampled_clients:
            raise FederationError(
                f"round {server_round}: {len(good)} of the {self.num_sampled_clients} sites asked sent an update; under "
                "client-level DP the noise is scaled to the sites asked, so every one of them must answer"
            )
        weight = self.rules.weighted_by_key
        for reply in good:  # equal weights: one site moves the average by at most C / m, which the noise is scaled to
            metrics = cast(MetricRecord, reply.content["metrics"])
            reply.content["metrics"] = MetricRecord({**dict(metrics), weight: 1})
        return super().aggregate_train(server_round, good)

    def spent(self) -> dict[str, Any]:
        """What the federation spent over the rounds released, as the step publishes it."""
        rounds = len(self.sampled)
        return self.account.spent(rounds, min(self.sampled.values(), default=len(self.rules.plan.parties)))
