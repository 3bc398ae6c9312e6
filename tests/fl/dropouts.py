"""Federations in which chosen sites go down at a chosen step, in process: the same ClientApp, watched."""

from __future__ import annotations

from typing import Any

from flwr.app import Context, Message

from workbench.fl.aggregation.base import PROTOCOL_OP
from workbench.fl.client_app import app as client_app
from workbench.fl.embedded_grid import EmbeddedGrid, identity
from workbench.fl.plan import FLPlan
from workbench.fl.server_app import FLOutcome, serve


def run_with_victims(configs: list[dict[str, Any]], plan: FLPlan, victims: dict[str, tuple[int, str]]) -> FLOutcome:
    """A federation in which each victim site's node goes down right after it answers a message: victims maps a site to
    (round, step), the step a message type ("train", "evaluate") or a protocol step ("share-keys"); round 0 is the
    federated statistics. As a SuperNode dying between two messages."""
    grid = EmbeddedGrid(client_app, configs)

    def app(message: Message, context: Context) -> Message:
        reply = client_app(message, context)
        config = message.content.config_records["config"]
        step = (int(config.get("server-round", 0)), str(config.get(PROTOCOL_OP, message.metadata.message_type)))  # type: ignore[call-overload]
        if victims.get(str(context.node_config["party"])) == step:
            grid.stopped.add(context.node_id)
        return reply

    grid._client_app = app  # type: ignore[assignment]  # the same ClientApp, watched  # noqa: SLF001
    with identity(node_id=grid.server_node_id):
        return serve(grid, plan, lambda r, m: None, lambda t: None)
