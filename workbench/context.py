"""What a step gets to work with: its parties' stores, the ledger, events, seeds.

Everything a step may do that has an effect outside its own parties goes
through here, so the runner can account for it: messages through `send`,
results for the coordinator through `publish`, progress through `progress`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.ledger import Ledger, Protection
from workbench.parties import COORDINATOR, PartyStore, Role, ScopedParties

if TYPE_CHECKING:  # numpy loads when a step draws random numbers, and events when a step runs, not when a recipe is validated
    import numpy as np

    from workbench.events import EventListener
    from workbench.governance.oversight import Oversight


def derive_rng(seed: int, *labels: str) -> np.random.Generator:
    """A generator that depends only on the recipe seed and stable labels.

    Python's `hash()` is salted per process, so labels are folded in with CRC-32
    to keep runs reproducible across processes and machines.
    """
    import numpy as np

    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


@dataclass
class StepContext:
    step: str
    seed: int
    parties: ScopedParties
    roles: Mapping[str, Role]
    ledger: Ledger
    emit: EventListener
    results: dict[str, Any] = field(default_factory=dict)
    """What the coordinator learned from this step; becomes the step's part of metrics.json."""
    manifest: dict[str, Any] = field(default_factory=dict)
    """Provenance that is not a result (e.g. key fingerprints, which change every run); goes to manifest.json."""
    releases: dict[str, bytes] = field(default_factory=dict)
    """Files the step releases to the coordinator (a DP synthetic table), by file name; the runner writes them to
    released/<step>/ in the run directory."""
    oversight: Oversight | None = None
    """The parties' audit trails and release policies; None outside a run (unit tests of a step's parts)."""

    def store(self, party: str) -> PartyStore:
        return self.parties[party]

    def parties_with(self, role: Role) -> list[str]:
        """This step's parties that have `role`, in recipe order: how a step finds its hospitals, aggregator or key holder."""
        return [party for party in self.parties if self.roles[party] is role]

    def rng(self, *labels: str) -> np.random.Generator:
        return derive_rng(self.seed, self.step, *labels)

    def send(
        self,
        sender: str,
        receiver: str,
        kind: str,
        payload: bytes,
        protection: Protection,
        *,
        row_level: bool = False,
    ) -> bytes:
        """Move bytes from one party to another; the ledger records them, the receiver gets them back."""
        self.ledger.record(
            step=self.step,
            sender=sender,
            receiver=receiver,
            kind=kind,
            payload=payload,
            protection=protection,
            row_level=row_level,
        )
        return bytes(payload)

    def record_transfer(self, sender: str, receiver: str, kind: str, nbytes: int, digest: str, protection: Protection) -> None:
        """Account for a message another transport carried (Flower's), measured where it was serialized."""
        self.ledger.record_observed(
            step=self.step, sender=sender, receiver=receiver, kind=kind, nbytes=nbytes, digest=digest, protection=protection, row_level=False
        )

    def publish(self, party: str, summary: Mapping[str, Any]) -> None:
        """A party reports an aggregate summary to the coordinator (never row-level data).

        It travels as JSON through the ledger, so the report and metrics.json hold
        only what the coordinator actually received.
        Its owner's release policy is asked first: a summary it holds is not sent, and the step stops naming it.
        """
        self.parties[party]  # only a party this step runs at may publish
        payload = summary_payload(summary)
        if self.oversight is not None:
            self.oversight.release(party)
        message = self.ledger.record(
            step=self.step, sender=party, receiver=COORDINATOR, kind="metrics.summary", payload=payload, protection=Protection.NONE, row_level=False
        )
        if self.oversight is not None:
            self.oversight.released(party, message)
        self.results[party] = json.loads(payload)

    def progress(self, done: int, total: int, label: str = "") -> None:
        from workbench.events import Progress

        self.emit(Progress(step=self.step, done=done, total=total, label=label))

    def metric(self, name: str, value: float, *, party: str | None = None, round: int | None = None) -> None:
        from workbench.events import Metric

        self.emit(Metric(step=self.step, name=name, value=float(value), party=party, round=round))


def summary_payload(summary: Mapping[str, Any]) -> bytes:
    """The bytes a published summary travels as: what the ledger's digest, and a release's in the audit trail, cover."""
    return json.dumps(summary, sort_keys=True, default=_json_scalar).encode()


def _json_scalar(value: Any) -> Any:
    """numpy scalars reach summaries from metric functions; JSON wants plain numbers."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot publish a value of type {type(value).__name__}")
