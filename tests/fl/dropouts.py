"""Federations in which chosen sites go down at a chosen step, in process: the same ClientApp, watched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.app import Context, Error, Message
from flwr.common.constant import ErrorCode

from workbench.fl.accounting_grid import Transfer
from workbench.fl.aggregation.base import PROTOCOL_OP
from workbench.fl.client_app import app as client_app
from workbench.fl.embedded_grid import EmbeddedGrid, identity
from workbench.fl.plan import FLPlan
from workbench.fl.server_app import FLOutcome, serve


def run_with_victims(
    configs: list[dict[str, Any]],
    plan: FLPlan,
    victims: dict[str, tuple[int, str]],
    silent: bool = False,
    on_transfer: Callable[[Transfer], None] = lambda t: None,
) -> FLOutcome:
    """A federation in which each victim site's node goes down right after it answers a message: victims maps a site to
    (round, step), the step a message type ("train", "evaluate") or a protocol step ("share-keys"); round 0 is the
    federated statistics. As a SuperNode dying between two messages; `silent`: dying as that message arrives, unanswered."""
    grid = EmbeddedGrid(client_app, configs)

    def app(message: Message, context: Context) -> Message:
        config = message.content.config_records["config"]
        if PROTOCOL_OP in config:  # protocol steps, each for its own aggregation
            steps = set(zip(config[PROTOCOL_OP], config["rounds"]))  # type: ignore[call-overload]
        else:
            steps = {(message.metadata.message_type, int(config.get("server-round", 0)))}  # type: ignore[call-overload]
        victim = victims.get(str(context.node_config["party"]))
        if victim is None or victim[::-1] not in steps:
            return client_app(message, context)
        grid.stopped.add(context.node_id)
        return client_app(message, context) if not silent else Message(Error(code=ErrorCode.NODE_UNAVAILABLE, reason="node unavailable"), reply_to=message)

    grid._client_app = app  # type: ignore[assignment]  # the same ClientApp, watched  # noqa: SLF001
    with identity(node_id=grid.server_node_id):
        return serve(grid, plan, lambda r, m: None, on_transfer)
