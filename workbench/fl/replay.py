"""The aggregator's view of a site's first round, reproduced at the site, for the audit to attack.

The audit must attack what the aggregator actually received, not a model of it. Everything in round 1 is a function of
what the site holds: the plan (every node is told it), the initial global model (`init_params` from the plan's seed, as
the server draws it), the site's rows and the pooled standardizer (kept with the model), and the site's own random
stream (`derive_rng(seed, "fl", party, "round-1")`). So the site replays its round with the ClientApp's own
`local_update`, and gets the parameters it sent, bit for bit. What the aggregator read of them is the aggregation kind's
to say (`Aggregation.reads_updates`): each update, only the average (kept by fl_train as the round-2 global model, which
every site received anyway), or nothing in the clear.

Under DP with secret noise (`dp.noise`, the default) the replay draws its batches and noise afresh: it is an update of
the same mechanism, not the one sent, which no party can reproduce; its leakage is the mechanism's, which is what the
site's epsilon bounds.

Round 1 is the round attacked: it is the one every site can replay exactly, and with a zero-weight logistic start it is
where the class-means attack applies. With `fraction_train` below 1 a site may not have trained in round 1; the replay is
then the update it would have sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workbench.context import derive_rng
from workbench.fl.aggregation import for_plan
from workbench.fl.aggregation.base import UpdateSight
from workbench.fl.plan import FederatedTraining, FLPlan
from workbench.fl.strategies import STRATEGIES
from workbench.models.standardize import Standardizer
from workbench.privacy.update_leakage import UpdateView


@dataclass(frozen=True)
class FirstRound:
    """What the aggregator read of round 1 (`sight`), and the view the attacks run on; None where nothing is in the clear,
    with `reason` saying why."""

    sight: UpdateSight
    view: UpdateView | None
    reason: str = ""


def local_steps(plan: FLPlan, rows: int) -> int:
    """Gradient steps a site with `rows` training rows takes in one round, as the public plan implies them."""
    if plan.dp is not None:
        return plan.dp.schedule(rows, plan.batch_size, plan.local_epochs, plan.rounds).steps_per_round
    return plan.local_epochs * math.ceil(rows / (plan.batch_size or rows))


def first_round(training: FederatedTraining, standardizer: Standardizer, X: np.ndarray, y: np.ndarray, party: str) -> FirstRound:
    """Replay `party`'s round-1 update from its training rows (X, y) and return what the aggregator read of it."""
    from workbench.fl.client_app import local_update  # Flower loads with it: only when a federated model is audited

    plan = training.plan
    aggregation, family = for_plan(plan), plan.model.build()
    start = family.init_params(len(plan.features.names()), derive_rng(plan.seed, "fl", "init"))
    Z = standardizer.apply(X)
    penalty, steps = family.penalty_grad(start.copy(), plan.model.l2), local_steps(plan, len(y))

    def view(end: np.ndarray, mean_record: np.ndarray) -> UpdateView:
        return UpdateView(family.name, plan.model.hidden, start, end, plan.learning_rate, penalty, steps, mean_record)

    sight = aggregation.reads_updates
    if sight is UpdateSight.EACH:
        sent, _ = local_update(plan, party, start.copy(), Z, y, 1, plan.proximal_mu)
        return FirstRound(sight, view(sent, Z.mean(axis=0)))
    if sight is UpdateSight.NOTHING:
        return FirstRound(sight, None, "the aggregator held only ciphertexts, which it cannot decrypt")
    if STRATEGIES[plan.strategy].server_step:
        return FirstRound(sight, None, f"strategy {plan.strategy} stepped from the average, so the kept global model is not the average itself")
    if not training.first_global:
        return FirstRound(sight, None, "fl_train kept no round-1 global model")
    # The average of one-step updates is one step on the pooled rows; the pooled mean record is 0 by standardization.
    return FirstRound(sight, view(np.asarray(training.first_global, dtype=np.float64), np.zeros(Z.shape[1])))
