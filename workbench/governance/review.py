"""What a recipe will do with one party's data, shown to its owner before it signs (`workbench approve`).

Two sources, both available without a real row: the step contracts (which steps run at the party and which columns
each declares it reads there) and a dry run on mock rows, whose ledger says what leaves the party at each step, to
whom, under which protection and whether it is row-level. The digest covers what the owner decides on (steps,
columns, flows and their protection), not the mock run's byte counts, so the same recipe always yields the same digest.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.governance.signing import canonical
from workbench.ledger import Message
from workbench.recipe import Recipe


@dataclass(frozen=True)
class Flow:
    receiver: str
    kind: str
    protection: str
    row_level: bool
    messages: int
    bytes_on_mock: int


@dataclass(frozen=True)
class StepReview:
    step: str
    kind: str
    reads: dict[str, list[str]]
    """Table -> the columns the step's contract declares it reads at this party (empty: it opens no table, or reads
    whole tables it names elsewhere)."""
    sends: list[Flow]


@dataclass(frozen=True)
class PartyReview:
    party: str
    recipe_name: str
    recipe_hash: str
    steps: list[StepReview]

    @property
    def row_level_flows(self) -> list[tuple[str, Flow]]:
        return [(step.step, flow) for step in self.steps for flow in step.sends if flow.row_level]

    def digest(self) -> str:
        decided = [
            {
                "step": s.step,
                "kind": s.kind,
                "reads": s.reads,
                "sends": [{k: v for k, v in asdict(f).items() if k not in ("messages", "bytes_on_mock")} for f in s.sends],
            }
            for s in self.steps
        ]
        return hashlib.sha256(canonical({"party": self.party, "recipe_hash": self.recipe_hash, "steps": decided})).hexdigest()


def review_party(recipe: Recipe, party: str, mock_ledger: Sequence[Message]) -> PartyReview:
    role = recipe.parties[party].role
    steps = []
    for (name, contract), spec in zip(recipe.contracts(), recipe.steps):
        if party not in recipe.step_parties(spec):
            continue
        reads: dict[str, list[str]] = {}
        for columns in contract.reads:
            if columns.role is role:
                reads.setdefault(columns.table, [])
                reads[columns.table] += [c for c in columns.columns if c not in reads[columns.table]]
        flows: dict[tuple[str, str, str, bool], list[int]] = {}
        for message in mock_ledger:
            if message.step == name and message.sender == party:
                flows.setdefault((message.receiver, message.kind, message.protection.value, message.row_level), []).append(message.nbytes)
        sends = [Flow(receiver, kind, protection, row_level, len(sizes), sum(sizes)) for (receiver, kind, protection, row_level), sizes in flows.items()]
        steps.append(StepReview(name, spec.kind, reads, sends))
    return PartyReview(party, recipe.name, recipe.hash(), steps)


def dry_run_review(recipe: Recipe, party: str, base_dir: Path) -> PartyReview:
    """Run the chain on mock rows in a scratch folder and review what it did with `party`'s data.

    Raises the runner's RunError when the chain fails on mock rows: then there is nothing to review.
    """
    from workbench.runner import run_recipe  # the runner admits runs through governance: import it only when reviewing

    with tempfile.TemporaryDirectory(prefix="workbench-review-") as folder:
        mock_run = run_recipe(recipe, Path(folder) / "run", base_dir=base_dir, mock=True)
    return review_party(recipe, party, mock_run.ledger.messages)
