"""The aggregator's Flower ServerApp: federated statistics, then FedAvg/FedProx rounds.

`serve` holds the logic and returns an `FLOutcome`; the ServerApp wrapper
reads the plan from the run config and, outside the embedded runtime, writes
the outcome (and each round as it finishes) to a JSON-lines file for the
workbench to pick up.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import tenseal as ts
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from workbench.context import derive_rng
from workbench.crypto import ckks
from workbench.crypto import secure_sum as ss
from workbench.fl import moments
from workbench.fl.accounting_grid import AccountingGrid, Transfer
from workbench.fl.encrypted import from_arrays
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan
from workbench.fl.strategy import RoundObserver, WorkbenchFedAvg
from workbench.models.standardize import Standardizer


@dataclass
class FLOutcome:
    """What the aggregator ends with. Under CKKS with custody clients it holds model and moments only as
    ciphertexts: `params`, `center` and `scale` stay empty, and `encrypted_params` ([sum w_k theta_k..., sum w_k])
    and `encrypted_moments` (the pooled [count, sums..., squares...] as fixed-point limbs) are for a site to decrypt."""

    params: list[float]
    center: list[float]
    scale: list[float]
    history: dict[int, dict[str, dict[str, float]]]
    dropped: dict[int, list[str]]
    transfers: list[Transfer] = field(default_factory=list)
    encrypted_params: list[bytes] = field(default_factory=list)
    encrypted_moments: list[bytes] = field(default_factory=list)

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("encrypted_params", "encrypted_moments"):
            data[key] = [base64.b64encode(chunk).decode() for chunk in data[key]]
        return json.dumps({"outcome": data})

    @classmethod
    def from_dict(cls, data: dict) -> FLOutcome:
        history = {int(r): sites for r, sites in data["history"].items()}
        dropped = {int(r): sites for r, sites in data["dropped"].items()}
        return cls(data["params"], data["center"], data["scale"], history, dropped, [Transfer(**t) for t in data["transfers"]],
                   [base64.b64decode(c) for c in data.get("encrypted_params", [])],
                   [base64.b64decode(c) for c in data.get("encrypted_moments", [])])


def serve(grid: Grid, plan: FLPlan, observer: RoundObserver, on_transfer: Callable[[Transfer], None],
          public_context: bytes | None = None) -> FLOutcome:
    """Federated statistics, then the rounds. With CKKS, `public_context` (no secret key) lets the aggregator add."""
    transfers: list[Transfer] = []

    def keep(transfer: Transfer) -> None:
        transfers.append(transfer)
        on_transfer(transfer)

    accounting = AccountingGrid(grid, plan.server, plan.node_timeout, keep)
    context = _aggregator_context(plan, public_context)
    adder = None if context is None else (lambda updates: ckks.add(context, updates))
    unmask = None if context is None or plan.key_holder is None else _unmasker(accounting, plan, context)
    family = plan.model.build()
    initial = family.init_params(len(plan.features.names()), derive_rng(plan.seed, "fl", "init"))
    strategy = WorkbenchFedAvg(plan, accounting, observer, adder, unmask)
    pooled = federated_standardizer(accounting, plan, context)
    config = ConfigRecord({"plan": plan.model_dump_json()})
    if pooled.standardizer is None:  # custody clients: only the sites can read the pooled moments
        config[moments.CONFIG_KEY] = pooled.encrypted
        center: list[float] = []
        scale: list[float] = []
    else:
        center, scale = pooled.standardizer.center.tolist(), pooled.standardizer.scale.tolist()
        config["center"], config["scale"] = center, scale
        if adder is not None:
            config["total-rows"] = float(cast(float, pooled.rows))  # sites weight their encrypted updates by n_k / n
    logging.getLogger("flwr").setLevel(logging.WARNING)
    result = strategy.start(
        grid=accounting,
        initial_arrays=ArrayRecord({"params": Array(initial)}),
        num_rounds=plan.rounds,
        timeout=plan.node_timeout,
        train_config=config,
        evaluate_config=ConfigRecord(dict(config)),
    )
    if adder is not None and unmask is None:
        return FLOutcome([], center, scale, strategy.history, strategy.dropped, transfers,
                         encrypted_params=from_arrays(result.arrays), encrypted_moments=pooled.encrypted)
    params = result.arrays["params"].numpy()
    return FLOutcome(params.tolist(), center, scale, strategy.history, strategy.dropped, transfers)


def _aggregator_context(plan: FLPlan, public_context: bytes | None) -> ts.Context | None:
    if plan.aggregation == "none":
        return None
    if public_context is None:
        raise FederationError("aggregation ckks needs the aggregator's public CKKS context; add a ckks_keys step before fl_train")
    context = ckks.load_context(public_context)
    if context.is_private():
        raise FederationError("the aggregator was handed a context with the secret key; no custody allows it")
    return context


def _unmasker(grid: AccountingGrid, plan: FLPlan, context: ts.Context) -> Callable[[list[bytes]], np.ndarray]:
    """Custody key_holder: mask the encrypted sum, have the key holder decrypt it, remove the mask here."""
    count = plan.param_count() + 1

    def unmask(chunks: list[bytes]) -> np.ndarray:
        masked, mask = ckks.mask(context, chunks, count)
        return _key_holder_decrypts(grid, plan, ConfigRecord({"op": "decrypt", "ckks": masked, "count": count}), "aggregate") - mask

    return unmask


def _key_holder_decrypts(grid: AccountingGrid, plan: FLPlan, request: ConfigRecord, what: str) -> np.ndarray:
    """Send a masked sum to the key holder's node and return what it decrypted (still masked)."""
    holder = next((node for node, party in grid.parties.items() if party == plan.key_holder), None)
    message = Message(RecordDict({"config": request}), holder, "query") if holder is not None else None
    replies = [] if message is None else list(grid.send_and_receive([message], timeout=plan.node_timeout))
    if not replies or replies[0].has_error():
        reason = replies[0].error.reason.splitlines()[0] if replies else "no answer"
        raise FederationError(f"the key holder {plan.key_holder!r} did not decrypt the masked {what} ({reason})")
    return replies[0].content["masked"]["values"].numpy()


def _identified_replies(grid: AccountingGrid, plan: FLPlan, query: RecordDict) -> list[Message]:
    """Ask every connected node who it is (sites answer with their statistics); return the sites' answers."""
    expected = plan.parties + ([plan.key_holder] if plan.key_holder else [])
    nodes = grid.wait_for_nodes(expected, plan.min_available_clients + (1 if plan.key_holder else 0))
    replies = list(grid.send_and_receive([Message(query, node, "query") for node in nodes], timeout=plan.node_timeout))
    good = [reply for reply in replies if not reply.has_error()]
    for reply in good:
        grid.identify(reply.metadata.src_node_id, str(reply.content["identity"]["party"]))
    if plan.key_holder and plan.key_holder not in grid.parties.values():
        raise FederationError(f"the key holder {plan.key_holder!r} did not answer; encrypted aggregation cannot finish without it")
    sites = [reply for reply in good if grid.party(reply.metadata.src_node_id) in plan.parties]
    if len(sites) < plan.min_available_clients:
        errors = "; ".join(sorted({r.error.reason.splitlines()[0] for r in replies if r.has_error()}))
        raise FederationError(f"federated statistics: {len(sites)} site(s) answered ({errors}); the recipe needs {plan.min_available_clients}")
    return sites



@dataclass(frozen=True)
class PooledMoments:
    """The federated statistics as the aggregator ends with them: plain (a standardizer and the row count), or,
    under custody clients, only `encrypted` (the sites' summed moments, which the sites decrypt)."""

    standardizer: Standardizer | None
    rows: float | None
    encrypted: list[bytes] = field(default_factory=list)


def federated_standardizer(grid: AccountingGrid, plan: FLPlan, context: ts.Context | None = None) -> PooledMoments:
    """Sites send counts, sums and sums of squares; their totals standardize exactly as pooled data would.

    Under CKKS (`context` is the aggregator's, without the secret key) the moments arrive encrypted and are only
    added here; custody key_holder then decrypts the masked total through the key holder.
    """
    good = _identified_replies(grid, plan, RecordDict({"config": ConfigRecord({"plan": plan.model_dump_json()})}))
    if context is None:
        count = sum(float(r.content["metrics"]["num-examples"]) for r in good)
        sums = np.sum([r.content["arrays"]["sums"].numpy() for r in good], axis=0)
        squares = np.sum([r.content["arrays"]["squares"].numpy() for r in good], axis=0)
        return PooledMoments(Standardizer.from_moments(count, sums, squares), count)
    total = ckks.add(context, [list(cast(list[bytes], r.content["encrypted"]["ckks"])) for r in good])
    if plan.key_holder is None:
        return PooledMoments(None, None, total)
    features, sites = len(plan.features.names()), len(good)
    masked = ss.mask(context, total, 1 + 2 * features, moments.CODEC, sites)
    request = ConfigRecord({"op": "decrypt", "ckks": masked.chunks, "count": len(masked.mask), "parties": sites})
    seen = _key_holder_decrypts(grid, plan, request, "feature moments")
    return PooledMoments(*moments.standardizer(ss.unmask(seen.astype(np.int64), masked, moments.CODEC, sites), features))


# --- the Flower ServerApp, for the simulation and deployment runtimes -----------------------------

app = ServerApp()


def encode_plan(plan: FLPlan) -> str:
    """Plans travel in Flower's run config; base64 keeps JSON's quotes out of TOML's."""
    return base64.b64encode(plan.model_dump_json().encode()).decode()


def _pull_objects_quickly() -> None:
    """HttpGrid pulls reply objects with a 1 s → 10 s back-off when a reply is announced before its objects arrive."""
    import flwr.superlink.grid.http_grid as http_grid

    pull_objects = http_grid.pull_objects

    def quick(*args: object, **kwargs: object) -> object:
        kwargs.setdefault("initial_backoff", 0.01)
        kwargs.setdefault("backoff_cap", 0.25)
        return pull_objects(*args, **kwargs)

    http_grid.pull_objects = quick


@app.main()
def main(grid: Grid, context: Context) -> None:
    if type(grid).__module__ == "flwr.superlink.grid.http_grid":
        _pull_objects_quickly()
    plan = FLPlan.model_validate_json(base64.b64decode(str(context.run_config["workbench-plan"])))
    output = Path(str(context.run_config["workbench-output"]))
    with output.open("a") as handle:
        def observe(server_round: int, sites: dict[str, dict[str, float]]) -> None:
            handle.write(json.dumps({"round": server_round, "sites": sites, "time": time.time()}) + "\n")
            handle.flush()

        public = str(context.run_config.get("workbench-ckks", ""))
        try:
            outcome = serve(grid, plan, observe, lambda transfer: None, base64.b64decode(public) if public else None)
        except FederationError as error:
            handle.write(json.dumps({"error": str(error)}) + "\n")
            return
        handle.write(outcome.to_json() + "\n")
