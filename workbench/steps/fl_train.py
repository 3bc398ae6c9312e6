"""Hospitals train one model together with Flower; the aggregator party runs the server.

Each site's table reaches only its own client (a private file per site); what
crosses between sites and aggregator is what Flower carries, and every such
message is in the ledger with its size. Plain updates are unprotected
(`protection: none`): the aggregator sees each site's model update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from workbench.context import StepContext
from workbench.contracts import Contract, Randomness, RoleNeed, Technique
from workbench.crypto.secagg import SecAggParams
from workbench.data.splits import SPLIT_COLUMN, VALIDATION_COLUMN, split_part
from workbench.errors import RoleError, WorkbenchError
from workbench.fl.aggregation import KINDS, AggregationName, for_summary, kind
from workbench.fl.aggregation.plain import Plain
from workbench.fl.plan import FederatedTraining, FLPlan, training_key
from workbench.fl.settings import DeploymentSettings, RuntimeName
from workbench.fl.strategies import STRATEGIES, STRATEGY_FIELDS, StrategyFields
from workbench.ledger import Protection
from workbench.models import model_key
from workbench.models.features import FeatureError, TableRef, design_matrix, label_vector
from workbench.models.model import Model
from workbench.models.personalize import PersonalizeParams
from workbench.parties import Role
from workbench.privacy.dp_params import DP_METRIC_PREFIX, PUBLIC_SCALING, DPParams, dp_spent, is_client_level, largest_epsilon
from workbench.report.blocks import Block, Figure, Table, Text
from workbench.report.figures import line_chart
from workbench.report.privacy import dp_block
from workbench.scratch import private_file, private_folder
from workbench.steps.base import Step, register
from workbench.steps.training import TrainingParams

if TYPE_CHECKING:
    from workbench.fl.accounting_grid import Transfer


class FLTrainParams(StrategyFields, TrainingParams):
    rounds: int = Field(30, ge=1, le=10_000, description="Federated rounds.")
    local_epochs: int = Field(1, ge=1, le=1_000, description="Passes over its training rows each site makes per round.")
    learning_rate: float = Field(0.1, gt=0.0, description="Local SGD step size.")
    batch_size: int | None = Field(
        32,
        ge=1,
        description="Local mini-batch size; null: the site's whole training set "
        "(B=inf in McMahan et al.: with one local epoch each round is an exact gradient step of the pooled objective).",
    )
    fraction_train: float = Field(1.0, gt=0.0, le=1.0, description="Share of sites sampled to train each round.")
    min_available_clients: int | None = Field(None, ge=1, description="Fewest sites that must answer; default: all of them.")
    aggregation: AggregationName = Field(
        Plain.name,
        description="none: plain updates; ckks: CKKS-encrypted, the aggregator only adds (needs a ckks_keys step before); "
        "secagg: masked updates whose masks cancel in the sum (Bonawitz et al.), surviving sites that drop out.",
    )
    runtime: RuntimeName = Field("embedded", description="embedded (in-process), simulation (Ray) or deployment (SuperLink and SuperNodes).")
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings, description="SuperLink to use (deployment only).")
    node_timeout: float = Field(60.0, gt=0.0, description="Seconds to wait for a site before counting it as gone.")
    dp: DPParams | None = Field(
        None,
        description="Differential privacy. level sample (the default): each site trains by DP-SGD (Poisson batches, per-row "
        "clipping, Gaussian noise) and keeps its own accountant over every step of every round. level client: the aggregator "
        "clips each site's update and noises their average (Flower's DifferentialPrivacyServerSideFixedClipping), for "
        "federations of hundreds of sites; aggregation none and strategies fedavg or fedprox only. null: plain SGD.",
    )
    secagg: SecAggParams | None = Field(
        None,
        description="Options of aggregation secagg: num_shares (default all sites), reconstruction_threshold (default a majority), "
        "clip_range (updates clipped to ±8), quantization_bits (22) and modulus_bits (32). null: the defaults.",
    )
    save_as: str = Field("federated", description="Name under which each site keeps the federated model, for `evaluate`.")
    personalize: PersonalizeParams | None = Field(
        None, description="After training, each site fine-tunes the final model on its own training rows and keeps it as a model of its own."
    )

    @field_validator("personalize")
    @classmethod
    def _personalize_without_dp(cls, personalize: PersonalizeParams | None, info: ValidationInfo) -> PersonalizeParams | None:
        if personalize is not None and info.data.get("dp") is not None:
            raise ValueError(
                "personalize fine-tunes on each site's rows without noise, so the personalized model would escape the dp budget; "
                "remove personalize, or fine-tune in a step without dp"
            )
        return personalize

    @model_validator(mode="after")
    def _options_fit_the_aggregation(self) -> FLTrainParams:
        """A kind's own options (e.g. `secagg`) mean nothing under another aggregation: say so rather than ignore them."""
        own = kind(self.aggregation).options()
        for other in KINDS.values():
            if (field := other.options()) and field != own and getattr(self, field) is not None:
                raise ValueError(
                    f"{field} sets the options of aggregation {other.name}, and this step aggregates by {self.aggregation}; "
                    f"remove {field} or set aggregation: {other.name}"
                )
        return self

    @field_validator("dp")
    @classmethod
    def _client_level_fits(cls, dp: DPParams | None, info: ValidationInfo) -> DPParams | None:
        """Client-level DP needs an aggregator that reads each update (to clip it) and a server step that is the noised
        average itself (a server optimizer's moments would carry un-noised averages into later rounds)."""
        if dp is None or dp.level != "client":
            return dp
        combined, strategy = info.data.get("aggregation"), info.data.get("strategy")  # absent: refused as invalid themselves
        if combined and (hidden := kind(combined).hides_updates):
            raise ValueError(f"dp.level client cannot run under aggregation {combined}: {hidden}")
        if strategy and STRATEGIES[strategy].server_step:
            raise ValueError(
                f"dp.level client noises the average, and strategy {strategy} takes its server step from it with state "
                "(momentum or adaptive moments) that Flower's DP wrapper does not noise; use strategy fedavg or fedprox"
            )
        return dp

    def plan(self, server: str, sites: list[str], seed: int) -> FLPlan:
        """What every node of the federation is told about this training: the step's parameters, its parties, the seed."""
        return FLPlan(
            server=server,
            parties=sites,
            features=self.features,
            label=self.label,
            model=self.model,
            rounds=self.rounds,
            local_epochs=self.local_epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            fraction_train=self.fraction_train,
            min_available_clients=self.min_available_clients or len(sites),
            seed=seed,
            node_timeout=self.node_timeout,
            aggregation=self.aggregation,
            dp=self.dp,
            secagg=self.secagg,
            **self.model_dump(include=set(STRATEGY_FIELDS)),
        )


@register
class FLTrain(Step[FLTrainParams]):
    """Federated training: hospitals are Flower clients, the aggregator party is the server."""

    kind = "fl_train"
    Params = FLTrainParams
    roles = (Role.HOSPITAL, Role.AGGREGATOR, Role.KEY_HOLDER)

    def contract(self) -> Contract:
        p, aggregation = self.params, kind(self.params.aggregation)
        noisy = p.dp is not None and not p.dp.seeded
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL, 2), RoleNeed(Role.AGGREGATOR, 1, 1)),
            reads=p.reads(),
            saves_models=(p.save_as, *((p.personalize.name(p.save_as),) if p.personalize else ())),
            needs_keys=aggregation.needs_keys,
            refuses_custody=aggregation.refuses_strategy(p.strategy),
            # DP noise is drawn afresh (at the sites; at level client, Flower's at the aggregator) unless the recipe seeds it
            randomness=Randomness.NOISE if noisy else Randomness.SEED_AND_SYSTEM if aggregation.fresh_randomness else Randomness.SEED,
            exact=aggregation.exact,
            technique=Technique("federated training", aggregation.name, aggregation.title, aggregation.update_protection),
        )

    def run(self, ctx: StepContext) -> None:
        from workbench.fl import runtimes  # Flower loads when training starts, not when a recipe is validated
        from workbench.fl.deployment import FederationRecord

        p = self.params
        sites, servers = ctx.parties_with(Role.HOSPITAL), ctx.parties_with(Role.AGGREGATOR)  # a key holder trains nothing
        if len(servers) != 1 or not sites:
            raise RoleError(f"fl_train needs one aggregator and at least one hospital among its parties; got {list(ctx.parties)}")
        plan = p.plan(servers[0], sites, ctx.seed)
        if plan.client_dp is not None:  # the aggregator's account needs no data: an overspending recipe stops before any message
            from workbench.privacy.client_account import open_client_account

            open_client_account(plan.client_dp, plan.rounds, len(sites))
        aggregation = kind(p.aggregation).prepare(ctx, plan)
        plan = aggregation.plan

        def observe(server_round: int, metrics: dict[str, dict[str, float | None]]) -> None:
            ctx.progress(server_round, p.rounds, f"round {server_round}")
            for party, values in metrics.items():
                for name, key in (("auc", "auc"), ("eval-loss", "eval-loss"), ("epsilon", DP_METRIC_PREFIX + "epsilon")):
                    if (value := values.get(key)) is not None:
                        ctx.metric(name, value, party=party, round=server_round)

        def account(transfer: Transfer) -> None:
            ctx.record_transfer(transfer.sender, transfer.receiver, transfer.kind, transfer.nbytes, transfer.digest, Protection(transfer.protection))

        with private_folder(ctx.step) as private:
            node_configs: list[Mapping[str, Any]] = [
                {"party": site, "data-path": self._site_file(ctx, site, private), **aggregation.site_config(ctx, site, private)} for site in sites
            ]
            node_configs += aggregation.helper_configs(ctx, private)
            outcome = runtimes.run_federated(p.runtime, plan, node_configs, observe, account, p.deployment, private, aggregation.server_material(ctx))
            federation = FederationRecord.read(private)  # a local federation's members and refusals (deployment on loopback only)
        _check_converging(p, outcome.history)
        if federation is not None:  # keys and node ids change every run: provenance, not results
            ctx.manifest["federation_nodes"] = {
                party: {"public_key_sha256": node.fingerprint, "flower_node_id": node.node_id} for party, node in federation.nodes.items()
            }
        spent: dict[str, Any] = outcome.client_dp or dp_spent(outcome.history)
        scaling = PUBLIC_SCALING if p.features.public_scaling else "pooled moments"
        if outcome.client_dp:  # one account, the aggregator's: the mechanism, and where its noise came from
            spent["scaling"] = scaling
            ctx.manifest["dp"] = {**spent, "noise_seed": f"fresh at {plan.server!r} (numpy's unseeded global generator, as Flower draws it)"}
        elif spent:  # what reproduces a DP run: every site's mechanism and where its noise came from
            for figures in spent.values():
                figures |= {"scaling": scaling, "noise": p.dp.noise if p.dp else "secret"}
            ctx.manifest["dp"] = {site: {**figures, "noise_seed": _noise_source(p.dp, ctx.seed, site)} for site, figures in spent.items()}
        standardizer, params = aggregation.final_model(ctx, outcome, sites[0])
        training = FederatedTraining(plan, tuple(outcome.first_global))  # the plan every site was told, and the round-2 model it received
        for site in sites:  # the last evaluation round broadcast the final global model to every site
            ctx.store(site).put(model_key(p.save_as), Model(p.features, p.model, standardizer, params))
            ctx.store(site).put(training_key(p.save_as), training)
        if p.personalize:
            self._personalize(ctx, sites, p.personalize)
        ctx.publish(
            plan.server,
            {
                "runtime": p.runtime,
                "strategy": p.strategy,
                **({"strategy_parameters": parameters} if (parameters := plan.strategy_parameters()) else {}),
                "rounds": {str(r): sites_metrics for r, sites_metrics in sorted(outcome.history.items())},
                "dropped": {str(r): parties for r, parties in sorted(outcome.dropped.items())},
                **aggregation.summary(ctx),
                **({"dp": spent} if spent else {}),
                **(
                    {"personalized": {"model": p.personalize.name(p.save_as), **p.personalize.model_dump(exclude={"save_as"}, exclude_none=True)}}
                    if p.personalize
                    else {}
                ),
                **({"refused_nodes": [asdict(attempt) for attempt in federation.refused]} if federation is not None else {}),
            },
        )

    def _personalize(self, ctx: StepContext, sites: list[str], how: PersonalizeParams) -> None:
        """Each site fine-tunes the final model on its own training rows, at the site; nothing of it leaves."""
        from workbench.models.personalize import fine_tune

        p = self.params
        for site in sites:
            store, where = ctx.store(site), TableRef(site, p.table)
            train = split_part(store.table(p.table), where, test=False)
            X, y = design_matrix(train, p.features, where), label_vector(train, p.label, where)
            tuned = fine_tune(store.get(model_key(p.save_as)), X, y, how, p.learning_rate, p.batch_size, ctx.rng("personalize", site))
            store.put(model_key(how.name(p.save_as)), tuned)

    def _site_file(self, ctx: StepContext, site: str, private: Path) -> str:
        """The columns of a site's table that training reads (features, label, split), as the file its own client reads.

        Identifiers, outcomes of other studies and every column training does not need stay in the party's store.
        """
        p, table = self.params, ctx.store(site).table(self.params.table)
        needed = [*p.features.columns(), p.label, SPLIT_COLUMN, *((VALIDATION_COLUMN,) if VALIDATION_COLUMN in table.columns else ())]
        missing = [column for column in needed if column not in table.columns]
        if missing:
            raise FeatureError(
                f"{TableRef(site, p.table)}: fl_train reads column(s) {', '.join(missing)}, which the table lacks"
                + (" (add a split step before fl_train)" if SPLIT_COLUMN in missing else "")
            )
        path = private / site / f"{p.table}.parquet"
        with private_file(path) as handle:
            table.select(needed).write_parquet(handle)
        return str(path)

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        summary: dict[str, Any] = next(iter(results.values()), {})
        rounds = sorted(summary.get("rounds", {}), key=int)
        last = summary["rounds"][rounds[-1]] if rounds else {}
        aucs = [values["auc"] for values in last.values() if values.get("auc") is not None]
        auc = f", mean held-out AUC {sum(aucs) / len(aucs):.3f}" if aucs else ""
        dp = ""
        if summary.get("dp") and (epsilon := largest_epsilon(summary["dp"])) is not None:
            dp = f", {'client' if is_client_level(summary['dp']) else 'sample'}-level DP epsilon <= {epsilon:.2f}"
        return f"{len(rounds)} rounds of {summary.get('strategy', '?')}, updates {summary.get('update_protection', '?')}{dp}{auc}"

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        ((server, summary),) = results.items()
        summary = dict(summary)
        rounds = sorted(summary["rounds"], key=int)
        sites = sorted({site for r in rounds for site in summary["rounds"][r]})
        protection = for_summary(summary).describe(server, summary)
        parameters = ", ".join(f"{name} {value:g}" for name, value in summary.get("strategy_parameters", {}).items())
        blocks: list[Block] = [
            Text(
                "Protection of model updates",
                [f"{protection} Runtime: {summary['runtime']}, strategy: {summary['strategy']}{f' ({parameters})' if parameters else ''}."],
            )
        ]
        if summary.get("dp"):
            blocks.append(dp_block(summary["dp"]))
        for metric, label in (("auc", "held-out AUC"), ("eval-loss", "held-out log-loss")):
            series = {site: [summary["rounds"][r].get(site, {}).get(metric) for r in rounds] for site in sites}
            blocks.append(Figure(f"Federated {label} per round", line_chart([int(r) for r in rounds], series, ylabel=label)))
        last = summary["rounds"][rounds[-1]] if rounds else {}
        blocks.append(
            Table(
                "Final round, per site",
                ["site", "auc", "eval-loss", "train-loss"],
                [[site, last.get(site, {}).get("auc"), last.get(site, {}).get("eval-loss"), last.get(site, {}).get("train-loss")] for site in sites],
                note=_undefined_auc([site for site in sites if site in last and last[site].get("auc") is None]),
            )
        )
        if "refused_nodes" in summary:
            refused = summary["refused_nodes"]
            blocks.append(
                Text(
                    "Federation membership",
                    [
                        f"refused nodes: {len(refused)}. Only the sites' SuperNodes, whose keys were registered before the run, could join "
                        "(TLS and SuperNode authentication)."
                        + "".join(f" Refused: {r['route']} {r['fingerprint'] or '(no key logged)'}: {r['reason']}." for r in refused)
                    ],
                )
            )
        if summary["dropped"]:
            blocks.append(Text("Sites that dropped out", [f"round {r}: {', '.join(p)}" for r, p in summary["dropped"].items()]))
        return blocks


class TrainingDiverged(WorkbenchError, ArithmeticError):
    """Federated training ran off to infinity: a user's learning rate or penalty, not a bug; the message says which."""


def _check_converging(p: FLTrainParams, history: Mapping[int, Mapping[str, Mapping[str, float | None]]]) -> None:
    """Stop with the round, site and figure where training diverged, before an infinite loss reaches the report."""
    for server_round in sorted(history):
        for site, metrics in history[server_round].items():
            for name, value in metrics.items():
                if value is not None and not math.isfinite(value):
                    raise TrainingDiverged(
                        f"training diverged: {name} at {site!r} is {value} in round {server_round}. Lower "
                        f"learning_rate ({p.learning_rate:g}) or the model's l2 ({p.model.l2:g}): gradient descent overshoots "
                        "once learning_rate times the loss's curvature (at least l2) passes 2"
                    )


def _noise_source(dp: DPParams | None, seed: int, site: str) -> str:
    if dp is not None and dp.seeded:
        return f"recipe seed {seed}, derived per site and round ('fl', {site!r}, 'round-N')"
    return f"fresh at {site!r} each round (the operating system's; not kept, so no party can subtract it)"


def _undefined_auc(sites: list[str]) -> str:
    if not sites:
        return ""
    return f"AUC is undefined at {', '.join(sites)}: the held-out rows there hold a single class (log-loss is still defined)."
