"""The hospitals' Flower ClientApp: federated statistics, local training, local evaluation.

Runs unchanged in-process, under Ray, or in a SuperNode's ClientApp process.
Everything it needs arrives in the message (the plan, the global model) or in
its node config (which party it is, where that party's data is).
"""

from __future__ import annotations

from typing import cast

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from workbench.context import derive_rng
from workbench.fl.aggregation import for_plan, kind
from workbench.fl.aggregation.base import PROTOCOL_OP, ROUND_RECORD, SiteNode
from workbench.fl.plan import FLPlan
from workbench.fl.site_data import SiteData, load_site
from workbench.models.metrics import binary_metrics
from workbench.models.model import Family, sgd_epochs
from workbench.models.standardize import Standardizer
from workbench.models.standardize import moments as feature_moments
from workbench.privacy.dp_params import DP_METRIC_PREFIX, SPENT_FIELDS, DPParams


def _site(msg: Message, context: Context) -> tuple[FLPlan, str, SiteData]:
    plan = FLPlan.model_validate_json(str(msg.content.config_records["config"]["plan"]))
    party = str(context.node_config["party"])
    data = load_site(str(context.node_config["data-path"]), party, plan.features.model_dump_json(), plan.label)
    return plan, party, data


def query(msg: Message, context: Context) -> Message:
    """Sites answer with their statistics; a helper node (one that serves an aggregation kind, e.g. a key holder) says who
    it is, and answers what the aggregator asks of it."""
    if "aggregation" in context.node_config:
        return _helper(msg, context)
    config = msg.content.config_records["config"]
    if PROTOCOL_OP in config:  # a step of the aggregation kind's own protocol (e.g. secure aggregation's key sharing)
        answer = kind(str(config["aggregation"])).serve_site(SiteNode(context.node_config, context.state, config))
        return Message(content=answer, reply_to=msg)
    return statistics(msg, context)


def _helper(msg: Message, context: Context) -> Message:
    node = context.node_config
    identity = ConfigRecord({"party": str(node["party"]), "role": str(node["role"])})
    answer = kind(str(node["aggregation"])).serve_helper(node, msg.content.config_records["config"])
    return Message(content=RecordDict({"identity": identity, **answer}), reply_to=msg)


def statistics(msg: Message, context: Context) -> Message:
    """Count, sums and sums of squares of the training features: enough to standardize as pooled data would.

    How they travel (in the clear, encrypted as exact fixed-point limbs, ...) is the aggregation kind's to say.
    """
    plan, party, data = _site(msg, context)
    if plan.features.public_scaling:  # the public scaling, as moments: no statistic of the rows but their count leaves
        moments = Standardizer.from_bounds(plan.features).moments_for(float(len(data.X_train)))
    else:
        moments = feature_moments(data.X_train)
    site = SiteNode(context.node_config, context.state, msg.content.config_records["config"])
    content = for_plan(plan).site_moments(site, *moments)
    content["identity"] = ConfigRecord({"party": party})
    return Message(content=content, reply_to=msg)


def train(msg: Message, context: Context) -> Message:
    plan, party, data = _site(msg, context)
    aggregation, config = for_plan(plan), msg.content.config_records["config"]
    standardizer, total_rows = aggregation.site_standardizer(context.node_config, config)
    Z = standardizer.apply(data.X_train)
    start = aggregation.site_model(context.node_config, msg.content.array_records["arrays"])
    server_round = int(cast(int, config["server-round"]))
    proximal_mu = float(cast(float, config.get("proximal-mu", 0.0)))
    params, reported = local_update(plan, party, start, Z, data.y_train, server_round, proximal_mu)
    site = SiteNode(context.node_config, context.state, msg.content.config_records.get(ROUND_RECORD, ConfigRecord()))
    content = aggregation.site_update(site, params, len(data.y_train), total_rows, reported)
    return Message(content=content, reply_to=msg)


def local_update(
    plan: FLPlan, party: str, start: np.ndarray, Z: np.ndarray, y: np.ndarray, server_round: int, proximal_mu: float
) -> tuple[np.ndarray, dict[str, float]]:
    """The parameters a site sends after training `server_round` from the global model `start`, and what it reports.

    One function for the ClientApp and for the audit, which replays a site's first round at the site to attack the
    update as the aggregator received it: a replay that re-implemented training could drift from what was sent.
    """
    family = plan.model.build()
    rng = derive_rng(plan.seed, "fl", party, f"round-{server_round}")
    if plan.sample_dp is None:  # no DP, or client level's, which the aggregator adds to the average
        params = sgd_epochs(
            family,
            start,
            Z,
            y,
            l2=plan.model.l2,
            learning_rate=plan.learning_rate,
            epochs=plan.local_epochs,
            batch_size=plan.batch_size,
            rng=rng,
            proximal_mu=proximal_mu,
        )
        loss, _ = family.loss_and_grad(params, Z, y, plan.model.l2)
        return params, {"train-loss": loss}
    # the training loss reads the rows without noise, so under DP it stays at the site
    return _dp_round(plan, party, family, start, Z, y, server_round, rng, proximal_mu)


def _dp_round(
    plan: FLPlan, party: str, family: Family, start: np.ndarray, Z: np.ndarray, y: np.ndarray, server_round: int, rng: np.random.Generator, proximal_mu: float
) -> tuple[np.ndarray, dict[str, float]]:
    """One round of DP-SGD, once the site's own accountant allows it; what the site reports is what it has spent."""
    from workbench.privacy.dp_sgd import dp_sgd_epochs, noise_rng
    from workbench.privacy.site_account import open_account

    dp = cast(DPParams, plan.sample_dp)
    account = open_account(party, dp, dp.schedule(len(y), plan.batch_size, plan.local_epochs, plan.rounds), len(y))
    spent = account.allow(server_round)
    params = dp_sgd_epochs(
        family,
        start,
        Z,
        y,
        l2=plan.model.l2,
        learning_rate=plan.learning_rate,
        steps=account.schedule.steps_per_round,
        sample_rate=account.schedule.sample_rate,
        clip=dp.clip,
        noise_multiplier=account.noise_multiplier,
        rng=noise_rng(dp, rng),
        proximal_mu=proximal_mu,
    )
    return params, {DP_METRIC_PREFIX + name: float(getattr(spent, name)) for name in SPENT_FIELDS}


def evaluate(msg: Message, context: Context) -> Message:
    """Score the global model on this site's held-out rows; only the scores leave."""
    plan, _, data = _site(msg, context)
    aggregation, family = for_plan(plan), plan.model.build()
    params = aggregation.site_model(context.node_config, msg.content.array_records["arrays"])
    Z = aggregation.site_standardizer(context.node_config, msg.content.config_records["config"])[0].apply(data.X_test)
    loss, _ = family.loss_and_grad(params, Z, data.y_test, 0.0)
    scores = binary_metrics(data.y_test, family.predict_proba(params, Z))
    metrics = {"num-examples": len(data.y_test), "eval-loss": loss}
    if scores["auc"] is not None:
        metrics["auc"] = scores["auc"]
    return Message(content=RecordDict({"metrics": MetricRecord({**metrics})}), reply_to=msg)


def build_client_app(mods: list[Mod] | None = None) -> ClientApp:
    """The ClientApp with the workbench's handlers; `mods` let a runtime adapt the node's identity."""
    client = ClientApp(mods=mods or [])
    client.query()(query)
    client.train()(train)
    client.evaluate()(evaluate)
    return client


app = build_client_app()
