"""Flower's own server strategies, with the sampling and failure rules a study needs, by composition.

The strategy the plan names (`workbench.fl.strategies`) runs as Flower implements it: its hooks before a
round (FedProx's proximal weight, FedOpt's copy of the current model), its weighted averaging and its
server step. `StudyRules` goes in front of it and changes only what a study needs: sites are sampled by
name with the recipe's seed, so every runtime picks the same sites whatever node ids it assigned; a round
with fewer answers than `min_available_clients` stops the run naming the silent sites instead of training
on; each site's metrics are kept per round; and the plan's aggregation kind decides what Flower averages
(plain updates, or an aggregate it decrypted), or, when the aggregator may not read it, returns the
encrypted sum itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, cast

import flwr.serverapp.strategy as flower_strategies
import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from workbench.context import derive_rng
from workbench.fl.accounting_grid import AccountingGrid
from workbench.fl.aggregation import kind
from workbench.fl.aggregation.base import ROUND_RECORD, Aggregated
from workbench.fl.errors import FederationError, failure_reasons
from workbench.fl.plan import FLPlan
from workbench.fl.strategies import STRATEGIES
from workbench.privacy.dp_params import DP_METRIC_PREFIX, SPENT_FIELDS

RoundObserver = Callable[[int, dict[str, dict[str, float | None]]], None]
Combine = Callable[[list[Message], "FlowerStep"], Aggregated]
"""A round's good training replies, and Flower's strategy to hand them (or their aggregate) to, into the next model."""
TrainRequests = Callable[[int, list[str]], dict[str, dict[str, Any]]]
"""The round and the sites sampled for it -> what each site's training message carries of its own (the aggregation
kind's `train_requests`); a site left out is not asked."""


@dataclass(frozen=True)
class FlowerStep:
    """Flower's `aggregate_train` for one round, as an aggregation kind hands it what it may average."""

    aggregate_train: Callable[[int, Iterable[Message]], Aggregated]
    server_round: int
    drop: Callable[[Sequence[str]], None]

    def average(self, replies: list[Message]) -> Aggregated:
        return self.aggregate_train(self.server_round, replies)

    def step_from(self, aggregate: np.ndarray) -> Aggregated:
        """The aggregate enters Flower's strategy as the one reply it averages (weight 1: unchanged), and the strategy
        then takes its own server step from it."""
        content = RecordDict({"arrays": ArrayRecord({"params": Array(aggregate)}), "metrics": MetricRecord({"num-examples": 1})})
        return self.aggregate_train(self.server_round, [Message(content, dst_node_id=0, message_type=MessageType.TRAIN)])


class _Only:
    """The grid as Flower's sampling sees it: exactly the nodes this round asks (Flower then samples them all)."""

    def __init__(self, nodes: list[int]) -> None:
        self._nodes = nodes

    def get_node_ids(self) -> list[int]:
        return list(self._nodes)


class StudyRules(FedAvg):
    """Put in front of a Flower strategy (a FedAvg subclass) in the MRO; see the module docstring."""

    def __init__(self, plan: FLPlan, grid: AccountingGrid, observer: RoundObserver, combine: Combine, train_requests: TrainRequests, **flower: Any) -> None:
        # Flower samples every node of the view `_Only` gives it; whom to ask, and how many must answer, is decided here.
        super().__init__(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=1, **flower)
        self.plan = plan
        self.accounting = grid
        self.observer = observer
        self.combine = combine
        self.train_requests = train_requests
        self.training_metrics = {"train-loss", *(DP_METRIC_PREFIX + name for name in SPENT_FIELDS), *kind(plan.aggregation).site_metrics}
        """What a site's training reply may report that the history keeps."""
        self.history: dict[int, dict[str, dict[str, float | None]]] = {}
        """Round -> party -> metrics (train-loss, eval-loss, auc, num-examples; under DP, the site's privacy spent)."""
        self.dropped: dict[int, list[str]] = {}
        self._asked: list[int] = []

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        nodes = self._alive(server_round)
        rng = derive_rng(self.plan.seed, "fl", "sample", str(server_round))
        size = max(math.ceil(self.plan.fraction_train * len(nodes)), min(self.plan.min_available_clients, len(nodes)))
        self._asked = [nodes[i] for i in sorted(rng.choice(len(nodes), size=size, replace=False))]
        own = self.train_requests(server_round, [self.accounting.party(node) for node in self._asked])
        messages = self._in_order(super().configure_train(server_round, arrays, config, cast(Grid, _Only(self._asked))))
        return [_with_round_record(m, own[party]) for m in messages if (party := self.accounting.party(m.metadata.dst_node_id)) in own]

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self._asked = self._alive(server_round)
        return self._in_order(super().configure_evaluate(server_round, arrays, config, cast(Grid, _Only(self._asked))))

    def _in_order(self, messages: Iterable[Message]) -> list[Message]:
        """In party order, as asked: Flower's sampling shuffles, and the ledger must repeat from run to run."""
        order = {node: index for index, node in enumerate(self._asked)}
        return sorted(messages, key=lambda message: order[message.metadata.dst_node_id])

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> Aggregated:
        replies = self.check_quorum(server_round, list(replies), "training")
        self._keep(server_round, replies, self.training_metrics)
        return self.combine(replies, FlowerStep(super().aggregate_train, server_round, partial(self._drop, server_round)))

    def _drop(self, server_round: int, sites: Sequence[str]) -> None:
        if sites:
            self.dropped[server_round] = sorted(set(self.dropped.get(server_round, [])) | set(sites))

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = self.check_quorum(server_round, list(replies), "evaluation")
        self._keep(server_round, replies, {"eval-loss", "auc", "num-examples"})
        self.observer(server_round, self.history.get(server_round, {}))
        return self.evaluate_metrics_aggr_fn(_shared_metrics(replies), self.weighted_by_key) if replies else None

    def _alive(self, server_round: int) -> list[int]:
        """Connected nodes in party order; too few for the quorum is a failure, not a wait."""
        nodes = sorted((n for n in self.accounting.get_node_ids() if self.accounting.party(n) in self.plan.parties), key=self.accounting.party)
        missing = sorted(set(self.plan.parties) - {self.accounting.party(n) for n in nodes})
        self._drop(server_round, missing)
        if len(nodes) < self.plan.min_available_clients:
            raise FederationError(
                f"round {server_round}: site(s) {', '.join(missing)} disconnected; {len(nodes)} remain and the recipe "
                f"needs min_available_clients={self.plan.min_available_clients}"
            )
        return nodes

    def check_quorum(self, server_round: int, replies: list[Message], phase: str) -> list[Message]:
        """Sites asked but without a good answer (an error reply, or none before the timeout) are dropped or fatal."""
        good = [r for r in replies if not r.has_error()]
        errors = failure_reasons(replies)  # a site's bug fails the run even when enough sites answered
        answered = {self.accounting.party(r.metadata.src_node_id) for r in good}
        silent = sorted({self.accounting.party(n) for n in self._asked} - answered)
        self._drop(server_round, silent)
        if len(good) < self.plan.min_available_clients:
            raise FederationError(
                f"round {server_round} {phase}: site(s) {', '.join(silent)} did not answer"
                + (f" ({'; '.join(errors)})" if errors else "")
                + f"; {len(good)} answered and the recipe needs min_available_clients={self.plan.min_available_clients}"
            )
        return good

    def _keep(self, server_round: int, replies: list[Message], keys: set[str]) -> None:
        for reply in replies:
            party = self.accounting.party(reply.metadata.src_node_id)
            metrics: dict[str, Any] = dict(reply.content["metrics"])
            entry = self.history.setdefault(server_round, {}).setdefault(party, {})
            entry.update({key: float(value) for key, value in metrics.items() if key in keys})
            if "auc" in keys and "auc" not in metrics:
                entry["auc"] = None  # the site's held-out rows hold one class: AUC is undefined there, and said so


def _with_round_record(message: Message, own: dict[str, Any]) -> Message:
    """A training message with the site's own record (ROUND_RECORD) beside the shared model and config; Flower builds
    every site's message around one content, so a site's own entries go into a copy."""
    if not own:
        return message
    content = RecordDict({**message.content, ROUND_RECORD: ConfigRecord(own)})
    return Message(content, dst_node_id=message.metadata.dst_node_id, message_type=message.metadata.message_type)


def _shared_metrics(replies: list[Message]) -> list[RecordDict]:
    """The metrics every site reported: a site whose held-out rows have one class has no AUC (kept as undefined in the
    history), and Flower averages only records with the same keys."""
    # Flower types a record dict's values as any of its three record kinds; these replies carry MetricRecords.
    records = [dict(cast(MetricRecord, reply.content["metrics"])) for reply in replies]
    shared = set.intersection(*(set(record) for record in records))
    return [RecordDict({"metrics": MetricRecord({key: record[key] for key in sorted(shared)})}) for record in records]


def build_strategy(plan: FLPlan, grid: AccountingGrid, observer: RoundObserver, combine: Combine, train_requests: TrainRequests) -> StudyRules:
    """The plan's Flower strategy, with its parameters, under the study's rules."""
    return _under_study_rules(STRATEGIES[plan.strategy].flower)(plan, grid, observer, combine, train_requests, **plan.flower_arguments())


@cache
def _under_study_rules(flower: str) -> type[StudyRules]:
    strategy: type[FedAvg] = getattr(flower_strategies, flower)
    return type(f"Study{flower}", (StudyRules, strategy), {"__doc__": f"Flower's {flower} under the study's sampling and quorum rules."})
