"""What a run owes each data owner: its approval checked first, every store access and release in its trail.

The runner makes one `Oversight` per run. Before any data is loaded it records how each party came to let the run in
(its signed approval, the recipe's `approvals: not_required`, or mock rows); the party stores call `read` whenever a
step opens one of their tables; `StepContext.publish` asks `release` before a summary goes to the coordinator, which
holds it when the owner's release policy does not cover it, and records the release with the ledger entry it became.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.errors import WorkbenchError
from workbench.governance.approvals import Approval
from workbench.governance.audit_trail import TRAIL_DIR, AuditTrail

if TYPE_CHECKING:
    import polars as pl

    from workbench.ledger import Message

Mode = Literal["approved", "not_required", "mock"]
MODE_WORDS: dict[str, str] = {
    "approved": "every data owner approved this recipe's hash",
    "not_required": "approvals: not_required: no data owner approved this run (declared for teaching and synthetic data)",
    "mock": "mock data: every table is drawn from its declared schema; no real row was read",
}
"""How the report's first lines, `workbench run` and the manifest say what let a run touch the data."""


class ReleaseHeld(WorkbenchError, PermissionError):
    """A party's summary is not released to the coordinator: its owner's policy does not cover it."""


@dataclass
class Oversight:
    mode: Mode
    trails: dict[str, AuditTrail]
    approvals: dict[str, Approval] = field(default_factory=dict)
    """Each approving party's approval, and with it its release policy; parties without one (no data, or no approval
    needed) release freely."""
    step: str = ""
    _rows_read: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(step, party, table) -> rows of the table when the step opened it; a release policy weighs a step's largest."""

    @classmethod
    def open(cls, out_dir: Path, parties: list[str], mode: Mode, recipe_hash: str, approvals: dict[str, Approval]) -> Oversight:
        trails = {party: AuditTrail(out_dir / TRAIL_DIR / f"{party}.jsonl", party) for party in parties}
        for party, trail in trails.items():
            approval = approvals.get(party)
            signed = approval.model_dump(mode="json", exclude={"party", "recipe_hash"}) if approval else {}
            admitted = "holds no data: no approval needed" if mode == "approved" and approval is None else mode
            trail.append("admission", mode=admitted, recipe_hash=recipe_hash, **signed)
        return cls(mode, trails, approvals)

    @staticmethod
    def refuse(out_dir: Path, refused: dict[str, str], recipe_hash: str) -> None:
        """The trail of a party whose approval is missing: the refusal, and nothing read."""
        for party, reason in refused.items():
            AuditTrail(out_dir / TRAIL_DIR / f"{party}.jsonl", party).append("refused", recipe_hash=recipe_hash, reason=reason)

    def manifest(self) -> dict[str, Any]:
        """The run's admission and each trail's last hash, for the manifest (what `workbench audit verify` checks the trails against)."""
        approvals = {party: {"key": approval.key, "signed_at": approval.signed_at} for party, approval in self.approvals.items()}
        return {"mode": self.mode, "approvals": approvals, "audit_heads": self.heads()}

    def begin(self, step: str) -> None:
        self.step = step

    def loaded(self, party: str, dataset: str, part: str, table: str, frame: pl.DataFrame, fingerprint: dict[str, Any]) -> None:
        self.trails[party].append(
            "load", dataset=dataset, part=part, table=table, rows=frame.height, columns=list(frame.columns), fingerprint=fingerprint.get("sha256")
        )

    def read(self, party: str, table: str, frame: pl.DataFrame) -> None:
        """A step opened one of the party's tables: logged once per step and table, with its rows and columns."""
        key = (self.step, party, table)
        if key in self._rows_read:
            return
        self._rows_read[key] = frame.height
        self.trails[party].append("read", step=self.step, table=table, rows=frame.height, columns=list(frame.columns))

    def release(self, party: str) -> None:
        """Raise ReleaseHeld when the party's policy does not cover a summary of this step."""
        approval = self.approvals.get(party)
        rows = max((n for (step, reader, _), n in self._rows_read.items() if (step, reader) == (self.step, party)), default=0)
        reason = approval.release.holds(rows) if approval else None
        if reason is not None:
            self.trails[party].append("held", step=self.step, reason=reason)
            raise ReleaseHeld(
                f"party {party!r} holds its summary of step {self.step!r}: {reason}. Nothing was sent to the coordinator; "
                f"its owner may approve again with another release policy (`workbench approve ... --min-rows N`)"
            )

    def released(self, party: str, message: Message) -> None:
        self.trails[party].append(
            "release", step=self.step, receiver=message.receiver, kind=message.kind, ledger_seq=message.seq, nbytes=message.nbytes, digest=message.digest
        )

    def heads(self) -> dict[str, str]:
        return {party: trail.head for party, trail in self.trails.items()}
