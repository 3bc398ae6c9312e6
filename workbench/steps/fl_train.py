"""Hospitals train one model together with Flower; the aggregator party runs the server.

Each site's table reaches only its own client (a private file per site); what
crosses between sites and aggregator is what Flower carries, and every such
message is in the ledger with its size. Plain updates are unprotected
(`protection: none`): the aggregator sees each site's model update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from workbench.context import StepContext
from workbench.crypto import ckks
from workbench.data.splits import SPLIT_COLUMN
from workbench.fl import moments
from workbench.fl.accounting_grid import Transfer
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import DeploymentSettings, RuntimeName, run_federated
from workbench.fl.server_app import FLOutcome
from workbench.ledger import Protection
from workbench.models import model_key
from workbench.models.features import FeatureError, TableRef
from workbench.models.model import Model
from workbench.models.standardize import Standardizer
from workbench.parties import MissingItemError, Role
from workbench.report.blocks import Block, Figure, Table, Text
from workbench.report.figures import line_chart
from workbench.scratch import private_file, private_folder, write_private
from workbench.steps.base import Step, register
from workbench.steps.training import TrainingParams


class FLTrainParams(TrainingParams):
    strategy: Literal["fedavg", "fedprox"] = Field("fedavg", description="FedAvg, or FedProx with a proximal term.")
    proximal_mu: float = Field(0.0, ge=0.0, description="FedProx's proximal weight mu (fedprox only).")
    rounds: int = Field(30, ge=1, le=10_000, description="Federated rounds.")
    local_epochs: int = Field(1, ge=1, description="Passes over its training rows each site makes per round.")
    learning_rate: float = Field(0.1, gt=0.0, description="Local SGD step size.")
    batch_size: int | None = Field(32, ge=1, description="Local mini-batch size; null: the site's whole training set "
                                   "(B=inf in McMahan et al.: with one local epoch each round is an exact gradient step of the pooled objective).")
    fraction_train: float = Field(1.0, gt=0.0, le=1.0, description="Share of sites sampled to train each round.")
    min_available_clients: int | None = Field(None, ge=1, description="Fewest sites that must answer; default: all of them.")
    aggregation: Literal["none", "ckks"] = Field("none", description="none: plain updates; ckks: CKKS-encrypted, the aggregator "
                                                  "only adds (needs a ckks_keys step before).")
    runtime: RuntimeName = Field("embedded", description="embedded (in-process), simulation (Ray) or deployment (SuperLink and SuperNodes).")
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings, description="SuperLink to use (deployment only).")
    node_timeout: float = Field(60.0, gt=0.0, description="Seconds to wait for a site before counting it as gone.")
    save_as: str = Field("federated", description="Name under which each site keeps the federated model, for `evaluate`.")

    @model_validator(mode="after")
    def _mu_matches_strategy(self) -> FLTrainParams:
        if self.strategy == "fedprox" and self.proximal_mu <= 0:
            raise ValueError("strategy fedprox needs proximal_mu > 0 (e.g. 0.01)")
        if self.strategy == "fedavg" and self.proximal_mu:
            raise ValueError("proximal_mu is FedProx's; set strategy: fedprox to use it")
        return self


@register
class FLTrain(Step[FLTrainParams]):
    """Federated training: hospitals are Flower clients, the aggregator party is the server."""

    kind = "fl_train"
    Params = FLTrainParams
    roles = (Role.HOSPITAL, Role.AGGREGATOR, Role.KEY_HOLDER)

    def run(self, ctx: StepContext) -> None:
        p = self.params
        sites, servers = ctx.parties_with(Role.HOSPITAL), ctx.parties_with(Role.AGGREGATOR)  # a key holder trains nothing
        if len(servers) != 1 or not sites:
            raise ValueError(f"fl_train needs one aggregator and at least one hospital among its parties; got {list(ctx.parties)}")
        plan = FLPlan(
            server=servers[0], parties=sites, features=p.features, label=p.label, model=p.model, rounds=p.rounds,
            local_epochs=p.local_epochs, learning_rate=p.learning_rate, batch_size=p.batch_size, proximal_mu=p.proximal_mu,
            fraction_train=p.fraction_train, min_available_clients=p.min_available_clients or len(sites), seed=ctx.seed,
            node_timeout=p.node_timeout, aggregation=p.aggregation,
        )
        public = None
        if p.aggregation == "ckks":
            if not ctx.store(plan.server).has(ckks.AGGREGATOR_ITEM):
                raise MissingItemError(f"aggregation ckks needs keys, and {plan.server!r} holds none: add a `ckks_keys` step before fl_train")
            public = ctx.store(plan.server).get(ckks.AGGREGATOR_ITEM)
            holder = ctx.store(plan.server).get(ckks.CUSTODY_ITEM)["key_holder"]
            if holder is not None and holder not in ctx.parties:
                raise ValueError(f"custody key_holder: {holder!r} must be among fl_train's parties to decrypt masked aggregates")
            plan = plan.model_copy(update={"key_holder": holder})

        def observe(server_round: int, metrics: dict[str, dict[str, float]]) -> None:
            ctx.progress(server_round, p.rounds, f"round {server_round}")
            for party, values in metrics.items():
                for name in ("auc", "eval-loss"):
                    if name in values:
                        ctx.metric(name, values[name], party=party, round=server_round)

        def account(transfer: Transfer) -> None:
            ctx.record_transfer(transfer.sender, transfer.receiver, transfer.kind, transfer.nbytes, transfer.digest,
                                Protection(transfer.protection))

        with private_folder(ctx.step) as private:
            node_configs = [self._site_config(ctx, site, private, plan.key_holder) for site in sites]
            if plan.key_holder:
                node_configs.append(self._key_holder_config(ctx, plan.key_holder, private))
            outcome = run_federated(p.runtime, plan, node_configs, observe, account, p.deployment, private, public)
        standardizer, params = self._final_model(ctx, plan, outcome, sites[0])
        for site in sites:  # the last evaluation round broadcast the final global model to every site
            ctx.store(site).put(model_key(p.save_as), Model(p.features, p.model, standardizer, params))
        ctx.publish(plan.server, {
            "runtime": p.runtime,
            "strategy": p.strategy,
            "rounds": {str(r): sites_metrics for r, sites_metrics in sorted(outcome.history.items())},
            "dropped": {str(r): parties for r, parties in sorted(outcome.dropped.items())},
            "update_protection": Protection.CKKS.value if p.aggregation == "ckks" else Protection.NONE.value,
            **({"ciphertext_expansion": _expansion(ctx, plan), "custody": "key_holder" if plan.key_holder else "clients"}
               if p.aggregation == "ckks" else {}),
        })

    def _final_model(self, ctx: StepContext, plan: FLPlan, outcome: FLOutcome, site: str) -> tuple[Standardizer, np.ndarray]:
        """Plain: what the aggregator holds. CKKS, custody clients: a site decrypts the final aggregate and the pooled
        feature moments (the aggregator can read neither); custody key_holder: the aggregator ends with both in the clear."""
        if plan.aggregation == "none" or plan.key_holder:
            return Standardizer(np.asarray(outcome.center), np.asarray(outcome.scale)), np.asarray(outcome.params)
        secret = ckks.load_context(ctx.store(site).get(ckks.SECRET_ITEM))
        standardizer, _ = moments.decrypt(secret, outcome.encrypted_moments, len(plan.features.names()), len(plan.parties))
        values = ckks.decrypt(secret, outcome.encrypted_params, plan.param_count() + 1)
        return standardizer, values[:-1] / values[-1]

    def _site_config(self, ctx: StepContext, site: str, private: Path, key_holder: str | None) -> dict[str, str]:
        config = {"party": site, "data-path": self._site_file(ctx, site, private)}
        if self.params.aggregation == "ckks":  # the secret key (custody clients) or the public key (custody key_holder)
            item = ckks.PUBLIC_ITEM if key_holder else ckks.SECRET_ITEM
            config["ckks-context-path"] = str(write_private(private / site / "ckks-context", ctx.store(site).get(item)))
        return config

    def _key_holder_config(self, ctx: StepContext, holder: str, private: Path) -> dict[str, str]:
        """The key holder runs a node of its own that holds no data and only decrypts masked sums."""
        path = write_private(private / holder / "ckks-context", ctx.store(holder).get(ckks.SECRET_ITEM))
        return {"party": holder, "role": "key_holder", "ckks-context-path": str(path)}

    def _site_file(self, ctx: StepContext, site: str, private: Path) -> str:
        """The columns of a site's table that training reads (features, label, split), as the file its own client reads.

        Identifiers, outcomes of other studies and every column training does not need stay in the party's store.
        """
        p, table = self.params, ctx.store(site).table(self.params.table)
        needed = [*p.features.columns(), p.label, SPLIT_COLUMN]
        missing = [column for column in needed if column not in table.columns]
        if missing:
            raise FeatureError(f"{TableRef(site, p.table)}: fl_train reads column(s) {', '.join(missing)}, which the table lacks"
                               + (" (add a split step before fl_train)" if SPLIT_COLUMN in missing else ""))
        path = private / site / f"{p.table}.parquet"
        with private_file(path) as handle:
            table.select(needed).write_parquet(handle)
        return str(path)

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        (server, summary), = results.items()
        summary = dict(summary)
        rounds = sorted(summary["rounds"], key=int)
        sites = sorted({site for r in rounds for site in summary["rounds"][r]})
        if summary["update_protection"] == "ckks":
            if summary.get("custody") == "key_holder":
                custody = ("the key holder decrypted only masked sums, so the aggregator saw the aggregate model and the pooled "
                           "feature means and deviations, but no site's update or statistics")
            else:
                custody = ("the aggregator never saw a site's update or statistics, the aggregate model or the pooled feature "
                           "means and deviations (the sites decrypted those themselves)")
            protection = (f"Model updates travelled CKKS-encrypted (protection: ckks), and so did each site's feature counts, "
                          f"sums and sums of squares for standardization (as exact fixed-point sums): the aggregator '{server}' "
                          f"added ciphertexts with a context holding no secret key; {custody}. "
                          f"Update messages were {summary['ciphertext_expansion']:.2f}x the float32 bytes of their values. "
                          "Still in the clear: each site's training and held-out losses and AUCs, and its number of held-out rows.")
        else:
            protection = (f"Model updates travelled in the clear (protection: {summary['update_protection']}): the aggregator "
                          f"'{server}' saw each site's update in every round.")
        blocks: list[Block] = [Text("Protection of model updates", [
            f"{protection} Runtime: {summary['runtime']}, strategy: {summary['strategy']}."])]
        for metric, label in (("auc", "held-out AUC"), ("eval-loss", "held-out log-loss")):
            series = {site: [summary["rounds"][r].get(site, {}).get(metric) for r in rounds] for site in sites}
            blocks.append(Figure(f"Federated {label} per round", line_chart([int(r) for r in rounds], series, ylabel=label)))
        last = summary["rounds"][rounds[-1]] if rounds else {}
        blocks.append(Table("Final round, per site", ["site", "auc", "eval-loss", "train-loss"],
                            [[site, last.get(site, {}).get("auc"), last.get(site, {}).get("eval-loss"),
                              last.get(site, {}).get("train-loss")] for site in sites]))
        if summary["dropped"]:
            blocks.append(Text("Sites that dropped out", [f"round {r}: {', '.join(p)}" for r, p in summary["dropped"].items()]))
        return blocks


def _expansion(ctx: StepContext, plan: FLPlan) -> float:
    """Bytes of the update messages the aggregator received over float32 bytes of the values they carry."""
    updates = [m for m in ctx.ledger.messages if m.step == ctx.step and m.kind == "fl.update" and m.receiver == plan.server]
    return sum(m.nbytes for m in updates) / (len(updates) * 4 * (plan.param_count() + 1))
