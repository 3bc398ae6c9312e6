"""Where the federated app runs: in this process, on Flower's simulation engine, or on real SuperNodes.

Each runtime takes the same plan and per-site node configs and returns the same
`FLOutcome`; the ClientApp handlers and the server logic are identical in all three.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from workbench.fl.accounting_grid import Transfer
from workbench.fl.client_app import app as client_app
from workbench.fl.client_app import build_client_app
from workbench.fl.deployment import run_deployment
from workbench.fl.embedded_grid import EmbeddedGrid, identity
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan
from workbench.fl.server_app import FLOutcome, serve
from workbench.fl.settings import DeploymentSettings, RuntimeName
from workbench.fl.strategy import RoundObserver

RAY_STARTUP_SECONDS = 180.0
NodeConfigs = list[Mapping[str, Any]]


def run_embedded(
    plan: FLPlan, node_configs: NodeConfigs, observer: RoundObserver, on_transfer: Callable[[Transfer], None], public_context: bytes | None = None
) -> FLOutcome:
    """In-process and sequential: deterministic, no Ray, milliseconds of overhead a round."""
    grid = EmbeddedGrid(client_app, node_configs)
    with identity(node_id=grid.server_node_id):
        return serve(grid, plan, observer, on_transfer, public_context)


def run_simulation(
    plan: FLPlan, node_configs: NodeConfigs, observer: RoundObserver, on_transfer: Callable[[Transfer], None], public_context: bytes | None = None
) -> FLOutcome:
    """Flower's simulation engine (Ray): virtual nodes numbered by partition, told here which site each one is."""
    if importlib.util.find_spec("ray") is None:
        raise FederationError("runtime simulation needs Ray: pip install 'ppml-workbench[simulation]'")
    from flwr.simulation import run_simulation as flower_simulation

    # Ray starts its actors lazily: on a busy 2-core machine the first answers took 45 s here.
    plan = plan.model_copy(update={"node_timeout": max(plan.node_timeout, RAY_STARTUP_SECONDS)})
    sites = [dict(config) for config in node_configs]

    def as_site(message: Message, context: Context, call_next: Callable[[Message, Context], Message]) -> Message:
        context.node_config.update(sites[int(context.node_config["partition-id"])])
        return call_next(message, context)

    outcome: list[FLOutcome] = []
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        outcome.append(serve(grid, plan, observer, on_transfer, public_context))

    client: ClientApp = build_client_app(mods=[as_site])
    flower_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=len(sites),
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": max(2, len(sites)), "include_dashboard": False, "logging_level": "error", "log_to_driver": False},
        },
    )
    if not outcome:
        raise FederationError("the simulation ended without a result; see Flower's log above")
    return outcome[0]


def run_federated(
    runtime: RuntimeName,
    plan: FLPlan,
    node_configs: NodeConfigs,
    observer: RoundObserver,
    on_transfer: Callable[[Transfer], None],
    settings: DeploymentSettings,
    workdir: Path,
    public_context: bytes | None = None,
) -> FLOutcome:
    if runtime == "embedded":
        return run_embedded(plan, node_configs, observer, on_transfer, public_context)
    if runtime == "simulation":
        return run_simulation(plan, node_configs, observer, on_transfer, public_context)
    return run_deployment(plan, node_configs, observer, on_transfer, settings, workdir, public_context)


__all__ = ["DeploymentSettings", "RuntimeName", "run_embedded", "run_federated", "run_simulation"]
