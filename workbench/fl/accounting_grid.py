"""A Grid wrapper that records every message as a ledger transfer and enforces liveness.

It wraps whichever Grid the runtime provides (in-process, Ray, SuperLink), so
accounting and failure handling are written once. Flower's own node sampling
waits forever for missing nodes; this wrapper gives up after `node_timeout`
and names the sites that are gone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flwr.app import Message, RecordDict
from flwr.common.serde import recorddict_to_proto
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from workbench.fl.aggregation.base import REPLY_KINDS, REQUEST_KINDS
from workbench.fl.errors import FederationError
from workbench.ledger import Protection

POLL = 0.05
"""Seconds between reply pulls."""

Label = Callable[[str, RecordDict], tuple[str, str]]
"""A message's ledger kind and protection, from its default kind and its content: the aggregation kind's to say."""


@dataclass(frozen=True)
class Transfer:
    """One message as the ledger needs it; the payload itself stays with Flower."""

    sender: str
    receiver: str
    kind: str
    nbytes: int
    digest: str
    protection: str = Protection.NONE.value


def content_bytes(content: RecordDict) -> bytes:
    """The message content as serialized on the wire (Flower's protobuf form)."""
    return recorddict_to_proto(content).SerializeToString()


class AccountingGrid(Grid):
    def __init__(self, inner: Grid, server: str, node_timeout: float, on_transfer: Callable[[Transfer], None], label: Label) -> None:
        self._inner = inner
        self._server = server
        self._node_timeout = node_timeout
        self._on_transfer = on_transfer
        self._label = label
        """The aggregation kind's ledger kind and protection of a message (`Aggregation.label`)."""
        self.parties: dict[int, str] = {}
        """Node id -> party, learned from each site's statistics reply."""
        self._pending: list[tuple[int, bool, str, int, str, str]] = []
        """Transfers with nodes not yet identified: (node, from_node, kind, nbytes, digest, protection)."""

    # --- the Grid interface, delegated ---------------------------------------------------------
    def set_run(self, run: Run) -> None:
        self._inner.set_run(run)

    @property
    def run(self) -> Run:
        return self._inner.run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None) -> Message:
        return self._inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._inner.get_node_ids())

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        for message in messages:
            self._record(message.metadata.dst_node_id, False, REQUEST_KINDS, message)
        return self._inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self._inner.pull_messages(message_ids))
        self._record_replies(replies)
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Push, then poll for replies every POLL seconds until all are in or the timeout passes.

        Flower's HttpGrid waits a fixed 3 s between pulls; polling here keeps
        rounds short on every runtime without touching Flower.
        """
        pending = {message_id for message_id in self.push_messages(messages) if message_id}
        deadline = time.monotonic() + (timeout if timeout is not None else self._node_timeout)
        replies: list[Message] = []
        while pending:
            arrived = list(self.pull_messages(pending))
            replies.extend(arrived)
            pending -= {reply.metadata.reply_to_message_id for reply in arrived}
            if pending and time.monotonic() < deadline:
                time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
            elif pending:
                break
        return replies

    # --- what the workbench adds -----------------------------------------------------------------
    def party(self, node_id: int) -> str:
        return self.parties.get(node_id, f"node-{node_id}")

    def identify(self, node_id: int, party: str) -> None:
        """Name a node's party; its transfers held back until now are released in their original order."""
        self.parties[node_id] = party
        held, self._pending = self._pending, []
        for entry in held:
            if entry[0] in self.parties:
                self._emit(*entry)
            else:
                self._pending.append(entry)

    def wait_for_nodes(self, expected: list[str], minimum: int) -> list[int]:
        """Wait up to node_timeout for every expected site; then go on with at least `minimum`, or fail."""
        deadline = time.monotonic() + self._node_timeout
        while len(nodes := sorted(self.get_node_ids())) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(nodes) < minimum:
            raise FederationError(
                f"{len(nodes)} of the {len(expected)} sites ({', '.join(expected)}) connected within "
                f"{self._node_timeout:.0f} s; the recipe needs at least {minimum}. Are their SuperNodes running?"
            )
        return nodes

    def _record_replies(self, replies: list[Message]) -> None:
        for reply in replies:
            if not reply.has_error():
                self._record(reply.metadata.src_node_id, True, REPLY_KINDS, reply)

    def _record(self, node: int, from_node: bool, kinds: dict[str, str], message: Message) -> None:
        payload = content_bytes(message.content)
        kind, protection = self._label(kinds.get(message.metadata.message_type.split(".")[0], f"fl.{message.metadata.message_type}"), message.content)
        entry = (node, from_node, kind, len(payload), hashlib.sha256(payload).hexdigest(), protection)
        if node in self.parties:
            self._emit(*entry)
        else:
            self._pending.append(entry)

    def _emit(self, node: int, from_node: bool, kind: str, nbytes: int, digest: str, protection: str) -> None:
        site = self.party(node)
        sender, receiver = (site, self._server) if from_node else (self._server, site)
        self._on_transfer(Transfer(sender, receiver, kind, nbytes, digest, protection))

    def unidentified(self) -> int:
        """Transfers still waiting for their node's party (a node that never answered)."""
        return len(self._pending)
