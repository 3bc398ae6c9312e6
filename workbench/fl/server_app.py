"""The aggregator's Flower ServerApp: federated statistics, then the strategy's rounds.

`serve` holds the logic and returns an `FLOutcome`; the ServerApp wrapper
reads the plan from the run config and, outside the embedded runtime, writes
the outcome (and each round as it finishes) to a JSON-lines file for the
workbench to pick up. What is sent, combined and read in the clear is the
plan's aggregation kind's to say (`workbench.fl.aggregation`).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from workbench.context import derive_rng
from workbench.errors import WorkbenchError
from workbench.fl.accounting_grid import AccountingGrid, Transfer
from workbench.fl.aggregation import Aggregation, for_plan
from workbench.fl.aggregation.base import Aggregated, AggregatorEnd, FinalAggregate, FlowerAggregate, PooledMoments
from workbench.fl.client_dp import ClientLevelDP
from workbench.fl.errors import FederationError, failure_reasons
from workbench.fl.plan import FLPlan
from workbench.fl.strategy import RoundObserver, build_strategy
from workbench.privacy.client_account import open_client_account


@dataclass(frozen=True)
class FLOutcome(FinalAggregate):
    """What the aggregator ends with: the final model as the aggregation kind leaves it there (in the clear, or only as
    ciphertexts for a site to decrypt), each round's per-site metrics, the sites that dropped out, and every transfer."""

    history: dict[int, dict[str, dict[str, float | None]]] = field(kw_only=True)
    dropped: dict[int, list[str]] = field(kw_only=True)
    transfers: list[Transfer] = field(default_factory=list, kw_only=True)
    first_global: list[float] = field(default_factory=list, kw_only=True)
    """The global model after round 1 as the aggregator read it (empty where it reads only ciphertexts): under FedAvg the
    average of the first updates, which an update-leakage audit attacks where no single update was in the clear."""
    client_dp: dict[str, Any] | None = field(default=None, kw_only=True)
    """Under client-level DP, the aggregator's account (`ClientLevelDP.spent`); None otherwise."""

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("encrypted_params", "encrypted_moments"):
            data[key] = [base64.b64encode(chunk).decode() for chunk in data[key]]
        return json.dumps({"outcome": data})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FLOutcome:
        return cls(
            data["params"],
            data["center"],
            data["scale"],
            [base64.b64decode(c) for c in data.get("encrypted_params", [])],
            [base64.b64decode(c) for c in data.get("encrypted_moments", [])],
            history={int(r): sites for r, sites in data["history"].items()},
            dropped={int(r): sites for r, sites in data["dropped"].items()},
            transfers=[Transfer(**t) for t in data["transfers"]],
            first_global=data.get("first_global", []),
            client_dp=data.get("client_dp"),
        )


def serve(grid: Grid, plan: FLPlan, observer: RoundObserver, on_transfer: Callable[[Transfer], None], public_context: bytes | None = None) -> FLOutcome:
    """Federated statistics, then the rounds. `public_context`: what the coordinator handed the aggregator to combine with
    (under CKKS a context without the secret key, enough to add)."""
    transfers: list[Transfer] = []

    def keep(transfer: Transfer) -> None:
        transfers.append(transfer)
        on_transfer(transfer)

    account = None if plan.client_dp is None else open_client_account(plan.client_dp, plan.rounds, len(plan.parties))  # before any message
    aggregation = for_plan(plan)
    accounting = AccountingGrid(grid, plan.server, plan.node_timeout, keep, aggregation.label)
    end = aggregation.open(public_context, partial(_ask, accounting, plan), partial(_ask_sites, accounting, plan))
    family = plan.model.build()
    initial = family.init_params(len(plan.features.names()), derive_rng(plan.seed, "fl", "init"))
    first: list[ArrayRecord] = []

    def combine(replies: list[Message], flower: FlowerAggregate) -> Aggregated:
        aggregated = aggregation.combine(end, replies, flower)
        if not first and aggregated[0] is not None:
            first.append(aggregated[0])
        return aggregated

    rules = build_strategy(plan, accounting, observer, combine, lambda server_round, sites: aggregation.train_requests(end, sites, server_round))
    strategy: Strategy = rules if account is None else ClientLevelDP(rules, account)
    pooled = federated_standardizer(accounting, plan, aggregation, end)
    config = ConfigRecord({"plan": plan.model_dump_json(), **aggregation.round_config(pooled)})
    logging.getLogger("flwr").setLevel(logging.WARNING)
    result = strategy.start(
        grid=accounting,
        initial_arrays=ArrayRecord({"params": Array(initial)}),
        num_rounds=plan.rounds,
        timeout=plan.node_timeout,
        train_config=config,
        evaluate_config=ConfigRecord(dict(config)),
    )
    first_global = aggregation.final(first[0], pooled).params if first else []
    return FLOutcome(
        **vars(aggregation.final(result.arrays, pooled)),
        history=rules.history,
        dropped=rules.dropped,
        transfers=transfers,
        first_global=first_global,
        client_dp=strategy.spent() if isinstance(strategy, ClientLevelDP) else None,
    )


def _ask(grid: AccountingGrid, plan: FLPlan, party: str, request: dict[str, Any], failure: str) -> RecordDict:
    """Send a helper party (e.g. the key holder) a request and return its answer; `failure` says what it failed to do."""
    node = next((node for node, name in grid.parties.items() if name == party), None)
    message = Message(RecordDict({"config": ConfigRecord(request)}), node, "query") if node is not None else None
    replies = [] if message is None else list(grid.send_and_receive([message], timeout=plan.node_timeout))
    if not replies or replies[0].has_error():
        reason = "; ".join(failure_reasons(replies)) or "no answer"
        raise FederationError(f"{failure} ({reason})")
    return replies[0].content


def _ask_sites(grid: AccountingGrid, plan: FLPlan, requests: Mapping[str, dict[str, Any]], failure: str) -> dict[str, RecordDict]:
    """Send each named site its request at once; the answers of those that answered in time, by site (see `AskSites`)."""
    nodes = {name: node for node, name in grid.parties.items()}
    messages = [Message(RecordDict({"config": ConfigRecord(request)}), nodes[site], "query") for site, request in requests.items() if site in nodes]
    replies = list(grid.send_and_receive(messages, timeout=plan.node_timeout))
    refused = [reply for reply in replies if reply.has_error() and reply.error.code == ErrorCode.CLIENT_APP_RAISED_EXCEPTION]
    if errors := failure_reasons(refused):  # a site that refuses a step of the protocol stops it: that is no dropout
        raise FederationError(f"{failure}: {'; '.join(errors)}")
    return {grid.party(reply.metadata.src_node_id): reply.content for reply in replies if not reply.has_error()}


def _identified_replies(grid: AccountingGrid, plan: FLPlan, aggregation: Aggregation, query: RecordDict) -> list[Message]:
    """Ask every connected node who it is (sites answer with their statistics); return the sites' answers."""
    helpers = aggregation.helpers()
    nodes = grid.wait_for_nodes(plan.parties + list(helpers), plan.min_available_clients + len(helpers))
    replies = list(grid.send_and_receive([Message(query, node, "query") for node in nodes], timeout=plan.node_timeout))
    good = [reply for reply in replies if not reply.has_error()]
    failure_reasons(replies)  # a site's bug fails the run even when enough sites answered
    for reply in good:
        grid.identify(reply.metadata.src_node_id, str(reply.content["identity"]["party"]))
    for helper, what in helpers.items():
        if helper not in grid.parties.values():
            raise FederationError(f"{what} {helper!r} did not answer; {aggregation.title} cannot finish without it")
    sites = [reply for reply in good if grid.party(reply.metadata.src_node_id) in plan.parties]
    if len(sites) < plan.min_available_clients:
        errors = "; ".join(failure_reasons(replies))
        raise FederationError(f"federated statistics: {len(sites)} site(s) answered ({errors}); the recipe needs {plan.min_available_clients}")
    return sites


def federated_standardizer(grid: AccountingGrid, plan: FLPlan, aggregation: Aggregation, end: AggregatorEnd) -> PooledMoments:
    """Sites send counts, sums and sums of squares, as the aggregation kind lets them; their totals standardize exactly as
    pooled data would."""
    good = _identified_replies(grid, plan, aggregation, RecordDict({"config": ConfigRecord({"plan": plan.model_dump_json()})}))
    return aggregation.pool_moments(end, good)


# --- the Flower ServerApp, for the simulation and deployment runtimes -----------------------------

app = ServerApp()


def encode_plan(plan: FLPlan) -> str:
    """Plans travel in Flower's run config; base64 keeps JSON's quotes out of TOML's."""
    return base64.b64encode(plan.model_dump_json().encode()).decode()


def _pull_objects_quickly() -> None:
    """HttpGrid pulls reply objects with a 1 s → 10 s back-off when a reply is announced before its objects arrive."""
    import flwr.superlink.grid.http_grid as http_grid

    pull_objects = http_grid.pull_objects  # type: ignore[attr-defined]  # a name HttpGrid imports for itself: patched where it looks

    def quick(object_ids: list[str], pull_object_fn: Callable[[str], bytes], **kwargs: Any) -> dict[str, bytes]:
        kwargs.setdefault("initial_backoff", 0.01)
        kwargs.setdefault("backoff_cap", 0.25)
        result: dict[str, bytes] = pull_objects(object_ids, pull_object_fn, **kwargs)
        return result

    http_grid.pull_objects = quick  # type: ignore[attr-defined]  # as above


@app.main()
def main(grid: Grid, context: Context) -> None:
    if type(grid).__module__ == "flwr.superlink.grid.http_grid":
        _pull_objects_quickly()
    plan = FLPlan.model_validate_json(base64.b64decode(str(context.run_config["workbench-plan"])))
    output = Path(str(context.run_config["workbench-output"]))
    with output.open("a") as handle:

        def observe(server_round: int, sites: dict[str, dict[str, float | None]]) -> None:
            handle.write(json.dumps({"round": server_round, "sites": sites, "time": time.time()}) + "\n")
            handle.flush()

        public = str(context.run_config.get("workbench-ckks", ""))
        try:
            outcome = serve(grid, plan, observe, lambda transfer: None, base64.b64decode(public) if public else None)
        except WorkbenchError as error:  # a federation that failed, or a budget the recipe's rounds overspend
            handle.write(json.dumps({"error": str(error)}) + "\n")
            return
        handle.write(outcome.to_json() + "\n")
