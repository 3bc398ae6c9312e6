"""FedAvg / FedProx as Flower implements them, with the sampling and failure rules a study needs.

Aggregation is Flower's own (`FedAvg.aggregate_train`, weighted by examples).
What changes: sites are sampled by name with the recipe's seed, so every
runtime picks the same sites whatever node ids it assigned; a round with
fewer answers than `min_available_clients` stops the run naming the silent
sites instead of training on; and each site's metrics are kept per round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from workbench.context import derive_rng
from workbench.fl.accounting_grid import AccountingGrid
from workbench.fl.encrypted import to_arrays
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan

RoundObserver = Callable[[int, dict[str, dict[str, float]]], None]


class WorkbenchFedAvg(FedAvg):
    def __init__(self, plan: FLPlan, grid: AccountingGrid, observer: RoundObserver,
                 adder: Callable[[list[list[bytes]]], list[bytes]] | None = None,
                 unmask: Callable[[list[bytes]], np.ndarray] | None = None) -> None:
        super().__init__(
            fraction_train=plan.fraction_train,
            min_train_nodes=1,
            min_evaluate_nodes=1,
            min_available_nodes=plan.min_available_clients,
        )
        self.plan = plan
        self.accounting = grid
        self.observer = observer
        self.adder = adder
        """Under CKKS: adds encrypted updates with a key-less context; the aggregator never decrypts."""
        self.unmask = unmask
        """Custody key_holder: turns the encrypted sum into the plain aggregate through the key holder, masked."""
        self.history: dict[int, dict[str, dict[str, float]]] = {}
        """Round -> party -> metrics (train-loss, eval-loss, auc, num-examples)."""
        self.dropped: dict[int, list[str]] = {}
        self._asked: list[int] = []

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        config["server-round"] = server_round
        config["proximal-mu"] = self.plan.proximal_mu
        nodes = self._alive(server_round)
        rng = derive_rng(self.plan.seed, "fl", "sample", str(server_round))
        size = max(math.ceil(self.plan.fraction_train * len(nodes)), min(self.plan.min_available_clients, len(nodes)))
        self._asked = [nodes[i] for i in sorted(rng.choice(len(nodes), size=size, replace=False))]
        return self._construct_messages(RecordDict({"arrays": arrays, "config": config}), self._asked, "train")

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        config["server-round"] = server_round
        self._asked = self._alive(server_round)
        return self._construct_messages(RecordDict({"arrays": arrays, "config": config}), self._asked, "evaluate")

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = self._check_quorum(server_round, list(replies), "training")
        self._keep(server_round, replies, {"train-loss"})
        if self.adder is not None:
            summed = self.adder([list(reply.content["encrypted"]["ckks"]) for reply in replies])
            if self.unmask is None:
                return to_arrays(summed), None
            aggregate = self.unmask(summed)  # [sum w_k theta_k..., sum w_k]
            return ArrayRecord({"params": Array(aggregate[:-1] / aggregate[-1])}), None
        return super().aggregate_train(server_round, replies)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = self._check_quorum(server_round, list(replies), "evaluation")
        self._keep(server_round, replies, {"eval-loss", "auc", "num-examples"})
        self.observer(server_round, self.history.get(server_round, {}))
        return super().aggregate_evaluate(server_round, replies)

    def _alive(self, server_round: int) -> list[int]:
        """Connected nodes in party order; too few for the quorum is a failure, not a wait."""
        nodes = sorted((n for n in self.accounting.get_node_ids() if self.accounting.party(n) in self.plan.parties), key=self.accounting.party)
        missing = sorted(set(self.plan.parties) - {self.accounting.party(n) for n in nodes})
        if missing:
            self.dropped.setdefault(server_round, [])
            self.dropped[server_round] = sorted(set(self.dropped[server_round]) | set(missing))
        if len(nodes) < self.plan.min_available_clients:
            raise FederationError(
                f"round {server_round}: site(s) {', '.join(missing)} disconnected; {len(nodes)} remain and the recipe "
                f"needs min_available_clients={self.plan.min_available_clients}"
            )
        return nodes

    def _check_quorum(self, server_round: int, replies: list[Message], phase: str) -> list[Message]:
        """Sites asked but without a good answer (an error reply, or none before the timeout) are dropped or fatal."""
        good = [r for r in replies if not r.has_error()]
        answered = {self.accounting.party(r.metadata.src_node_id) for r in good}
        silent = sorted({self.accounting.party(n) for n in self._asked} - answered)
        if silent:
            self.dropped[server_round] = sorted(set(self.dropped.get(server_round, [])) | set(silent))
        if len(good) < self.plan.min_available_clients:
            errors = sorted({r.error.reason.splitlines()[0] for r in replies if r.has_error()})
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
