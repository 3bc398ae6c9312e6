"""Where the federated app runs: in this process, on Flower's simulation engine, or on real SuperNodes.

Each runtime takes the same plan and per-site node configs and returns the
same `FLOutcome`; the ClientApp and the server logic are identical in all three.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from workbench.fl.accounting_grid import Transfer
from workbench.fl.client_app import app as client_app
from workbench.fl.embedded_grid import EmbeddedGrid, identity
from workbench.fl.plan import FLPlan
from workbench.fl.server_app import FLOutcome, serve
from workbench.fl.strategy import RoundObserver


class Runtime(Protocol):
    def __call__(
        self, plan: FLPlan, node_configs: list[Mapping[str, Any]], observer: RoundObserver, on_transfer: Callable[[Transfer], None]
    ) -> FLOutcome: ...


def run_embedded(
    plan: FLPlan, node_configs: list[Mapping[str, Any]], observer: RoundObserver, on_transfer: Callable[[Transfer], None]
) -> FLOutcome:
    """In-process and sequential: deterministic, no Ray, milliseconds of overhead a round."""
    grid = EmbeddedGrid(client_app, node_configs)
    with identity(node_id=grid.server_node_id):
        return serve(grid, plan, observer, on_transfer)


RUNTIMES: dict[str, Runtime] = {"embedded": run_embedded}
