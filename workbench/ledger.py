"""The ledger: every message that crosses a party boundary, as bytes.

A pipeline is only as private as what it sends. Steps never hand Python objects
from one party to another; they serialize, send through the ledger, and the
receiver deserializes. So the ledger's totals are the true traffic, and a test
can check that nothing row-level left a party unless the recipe declared it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path


class Protection(StrEnum):
    """How a message's content is protected from its receiver and from anyone on the wire."""

    NONE = "none"
    BLINDED = "blinded"
    CKKS = "ckks"
    MASKED = "masked"
    ENCRYPTED = "encrypted"
    """Sealed for another party (authenticated encryption): the relaying receiver cannot open it."""
    DP = "dp"


@dataclass(frozen=True)
class Message:
    """One cross-party transfer as recorded: who, what kind, how big, how protected.

    `row_level` is true when the payload carries per-record data (identifiers,
    features, labels); such messages must be declared by the recipe.
    `digest` (SHA-256 of the payload) lets an auditor match a ledger entry with
    what a party logged on its side without the ledger keeping the payload.
    """

    seq: int
    step: str
    sender: str
    receiver: str
    kind: str
    nbytes: int
    protection: Protection
    row_level: bool
    digest: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


MessageListener = Callable[[Message], None]


class Ledger:
    """Append-only record of messages; optionally streamed to a JSON-lines file."""

    def __init__(self, path: Path | None = None, listeners: Iterable[MessageListener] = ()) -> None:
        self._messages: list[Message] = []
        self._path = path
        self._listeners = list(listeners)
        if path is not None:
            path.write_text("")

    def record(
        self,
        *,
        step: str,
        sender: str,
        receiver: str,
        kind: str,
        payload: bytes,
        protection: Protection,
        row_level: bool,
    ) -> Message:
        """Record bytes that are being sent; the caller hands the same bytes to the receiver."""
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(
                f"ledger: message {kind!r} from {sender!r} to {receiver!r} must be bytes, got {type(payload).__name__}; serialize it before sending"
            )
        return self.record_observed(
            step=step,
            sender=sender,
            receiver=receiver,
            kind=kind,
            nbytes=len(payload),
            digest=hashlib.sha256(payload).hexdigest(),
            protection=protection,
            row_level=row_level,
        )

    def record_observed(
        self,
        *,
        step: str,
        sender: str,
        receiver: str,
        kind: str,
        nbytes: int,
        digest: str,
        protection: Protection,
        row_level: bool,
    ) -> Message:
        """Record a message a transport carried for us (e.g. Flower's), measured where it was serialized."""
        if sender == receiver:
            raise ValueError(f"ledger: message {kind!r} is sent by {sender!r} to itself; only cross-party messages belong here")
        message = Message(
            seq=len(self._messages),
            step=step,
            sender=sender,
            receiver=receiver,
            kind=kind,
            nbytes=nbytes,
            protection=Protection(protection),
            row_level=row_level,
            digest=digest,
        )
        self._messages.append(message)
        if self._path is not None:
            with self._path.open("a") as handle:
                handle.write(message.to_json() + "\n")
        for listener in self._listeners:
            listener(message)
        return message

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(self._messages)

    def total_bytes(self) -> int:
        return sum(message.nbytes for message in self._messages)

    def summary(self) -> list[dict[str, object]]:
        """Bytes and message counts per (sender, receiver, kind, protection), in first-seen order."""
        groups: dict[tuple[str, str, str, str, bool], list[int]] = {}
        for m in self._messages:
            key = (m.sender, m.receiver, m.kind, m.protection.value, m.row_level)
            groups.setdefault(key, []).append(m.nbytes)
        return [
            {
                "sender": sender,
                "receiver": receiver,
                "kind": kind,
                "protection": protection,
                "row_level": row_level,
                "messages": len(sizes),
                "bytes": sum(sizes),
            }
            for (sender, receiver, kind, protection, row_level), sizes in groups.items()
        ]


def read_ledger(path: Path) -> list[Message]:
    """Load a run's ledger.jsonl back into messages, for reports and audits."""
    messages = []
    for line in path.read_text().splitlines():
        fields = json.loads(line)
        fields["protection"] = Protection(fields["protection"])
        messages.append(Message(**fields))
    return messages
