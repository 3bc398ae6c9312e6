"""An in-process Grid: the ServerApp's messages reach the real ClientApp by a direct call.

No Ray, no SuperLink, no threads: deliveries happen in order, so runs repeat
exactly and a round costs little more than the training itself. Messages still
make the protobuf round trip they would make on the wire, so what a client
receives is what Flower would have delivered, and bad content fails here too.

Flower internals relied on (flwr 1.41, pinned; tests/fl cover them):
`flwr.supercore.run.Run.create_empty`, `flwr.supercore.task_identity.TaskIdentity`
(Message() reads run, node and task ids from it), the read-only
`Metadata.message_id`/`src_node_id` set through `__dict__`, and
`flwr.common.serde.message_to_proto`/`message_from_proto`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from workbench.fl.errors import error_reason

RUN_ID = 1


def _set_id(message: Message, field: str, value: Any) -> None:
    message.metadata.__dict__[f"_{field}"] = value


def _wire_copy(message: Message) -> Message:
    """What the receiver would get after serialization, with the sender's message id kept."""
    copy = message_from_proto(message_to_proto(message))
    _set_id(copy, "message_id", message.metadata.message_id)
    return copy


class EmbeddedGrid(Grid):
    """Runs one ClientApp per virtual node inside this process; `node_configs` gives each its identity and data."""

    def __init__(self, client_app: ClientApp, node_configs: list[Mapping[str, Any]], first_node_id: int = 1001) -> None:
        self._client_app = client_app
        self._run = Run.create_empty(run_id=RUN_ID)
        self.contexts = {
            first_node_id + index: Context(run_id=RUN_ID, node_id=first_node_id + index, node_config=dict(config), state=RecordDict(), run_config={})
            for index, config in enumerate(node_configs)
        }
        self.server_node_id = SUPERLINK_NODE_ID
        self.stopped: set[int] = set()
        """Nodes taken down, to rehearse a site dying mid-run."""
        self._replies: dict[str, Message] = {}

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return [node for node in self.contexts if node not in self.stopped]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            _set_id(message, "message_id", uuid.uuid4().hex)
            self._replies[message.metadata.message_id] = self._deliver(message)
            ids.append(message.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = [self._replies.pop(i) for i in list(message_ids) if i in self._replies]
        return sorted(replies, key=lambda reply: reply.metadata.src_node_id)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return list(self.pull_messages(self.push_messages(messages)))

    def _deliver(self, message: Message) -> Message:
        node = message.metadata.dst_node_id
        if node not in self.contexts or node in self.stopped:
            reply = Message(Error(code=ErrorCode.NODE_UNAVAILABLE, reason="node unavailable"), reply_to=message)
            _set_id(reply, "src_node_id", SUPERLINK_NODE_ID)
        else:
            with identity(node_id=node):
                try:
                    reply = _wire_copy(self._client_app(_wire_copy(message), self.contexts[node]))
                except Exception as error:  # a ClientApp error becomes an error reply, as on a real SuperNode
                    reason = error_reason(error)
                    reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)
        _set_id(reply, "message_id", uuid.uuid4().hex)
        return reply


@contextmanager
def identity(**ids: int) -> Iterator[None]:
    """Set the ids Flower's Message constructor reads, as a SuperLink or ClientApp process would have them."""
    saved = {name: getattr(TaskIdentity, f"_{name}", None) for name in ("task_id", "run_id", "node_id")}
    for name, value in {"task_id": 1, "run_id": RUN_ID, **ids}.items():
        setattr(TaskIdentity, name, value)
    try:
        yield
    finally:
        for name, previous in saved.items():
            setattr(TaskIdentity, f"_{name}", previous)
