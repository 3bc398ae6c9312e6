"""Approvals pinned to a recipe's hash, signed by each data owner, checked before the runner opens a store.

An approvals folder holds, per party, PARTY.pub (the owner's registered public key) and PARTY.approvals.json (the
approvals it signed, one per recipe hash). What an owner signs is the recipe's hash (so an edit or a `--set` override
needs a new approval), the digest of the review it was shown, and the release policy for what the party publishes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import WorkbenchError
from workbench.governance import signing

APPROVALS_DIR = "approvals"
"""Default folder of approvals, beside the recipe."""
APPROVALS_SUFFIX = ".approvals.json"


class ApprovalError(WorkbenchError, PermissionError):
    """A party's data may not be opened: no valid approval of the recipe as run. The message names the party and what to do."""


class ReleasePolicy(BaseModel):
    """What the owner lets its party publish to the coordinator without a further look."""

    model_config = ConfigDict(extra="forbid")

    min_rows: int = Field(10, ge=1, le=1_000_000, description="A summary is released only when the step read at least this many of the party's rows.")

    def holds(self, rows: int) -> str | None:
        """Why a summary over `rows` rows is held, or None when it may go."""
        if 0 < rows < self.min_rows:
            return f"it is computed from {rows} rows, and the owner's policy releases summaries of at least {self.min_rows}"
        return None


class SyftEvidence(BaseModel):
    """What the party's PySyft datasite recorded when the owner approved the recipe there (`approve --via syft`)."""

    model_config = ConfigDict(extra="forbid")

    datasite: str
    request_id: str
    code_hash: str = Field(description="syft's hash of the code request, whose source pins the recipe hash.")
    requested_by: str
    status: Literal["approved"]
    released_rows: int = Field(ge=0, description="What the approved request released when it ran on the private table: its row count.")


class Approval(BaseModel):
    """One owner's signature over one recipe hash."""

    model_config = ConfigDict(extra="forbid")

    party: str
    recipe_name: str
    recipe_hash: str
    review_digest: str = Field(description="SHA-256 of the review the owner was shown (`review.PartyReview.digest`).")
    release: ReleasePolicy = Field(default_factory=ReleasePolicy)
    signed_at: str
    key: str = Field(description="Fingerprint of the key that signed.")
    syft: SyftEvidence | None = Field(None, description="Set when the owner approved through its syft datasite.")
    signature: str

    def body(self) -> dict[str, Any]:
        """What the signature covers: everything but itself (an unset field is left out, so older approvals still verify)."""
        return self.model_dump(mode="json", exclude={"signature"}, exclude_none=True)


def approve(
    folder: Path,
    party: str,
    recipe_name: str,
    recipe_hash: str,
    review_digest: str,
    key_path: Path,
    release: ReleasePolicy,
    syft: SyftEvidence | None = None,
) -> Approval:
    """Sign the recipe hash with the owner's key and file it, replacing an earlier approval of the same hash."""
    registered = registered_key(folder, party)
    own = signing.public_key_of(key_path)
    if own != registered:
        raise ApprovalError(
            f"{key_path} is not the key registered for party {party!r} in {folder / (party + signing.PUBLIC_SUFFIX)} "
            f"(fingerprints {signing.fingerprint(own)} and {signing.fingerprint(registered)}); sign with the party's own key"
        )
    unsigned = Approval(
        party=party,
        recipe_name=recipe_name,
        recipe_hash=recipe_hash,
        review_digest=review_digest,
        release=release,
        signed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        key=signing.fingerprint(own),
        syft=syft,
        signature="",
    )
    approval = unsigned.model_copy(update={"signature": signing.sign(key_path, unsigned.body())})
    kept = [other for other in approvals_of(folder, party) if other.recipe_hash != recipe_hash]
    path = folder / f"{party}{APPROVALS_SUFFIX}"
    path.write_text(json.dumps([a.model_dump(mode="json") for a in [*kept, approval]], indent=2) + "\n")
    return approval


def registered_key(folder: Path, party: str) -> str:
    path = folder / f"{party}{signing.PUBLIC_SUFFIX}"
    if not path.is_file():
        raise ApprovalError(
            f"party {party!r} has no registered key: {path} does not exist; its owner makes one with "
            f"`workbench keys new --party {party} --register {folder}`, or the recipe declares `approvals: not_required` (teaching, synthetic data)"
        )
    return signing.read_public_key(path)


def approvals_of(folder: Path, party: str) -> list[Approval]:
    path = folder / f"{party}{APPROVALS_SUFFIX}"
    if not path.is_file():
        return []
    try:
        return [Approval.model_validate(item) for item in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError, ValidationError) as error:
        raise ApprovalError(f"{path}: not an approvals file written by `workbench approve` ({type(error).__name__})") from None


def check_approval(folder: Path, party: str, recipe_name: str, recipe_hash: str) -> Approval:
    """The party's valid approval of exactly this recipe hash, or an ApprovalError saying what is missing and what to do."""
    key = registered_key(folder, party)
    approvals = approvals_of(folder, party)
    match = next((a for a in approvals if a.recipe_hash == recipe_hash), None)
    if match is None:
        others = ", ".join(f"{a.recipe_name} {a.recipe_hash[:8]}" for a in approvals) or "none"
        raise ApprovalError(
            f"party {party!r} has not approved recipe {recipe_name!r} as run (hash {recipe_hash[:8]}; its approvals: {others}); "
            "an edit or a --set override changes the hash. Its owner reviews and signs it with "
            f"`workbench approve RECIPE --party {party} --key KEY --approvals {folder}`"
        )
    if match.party != party or not signing.verify(key, match.body(), match.signature):
        raise ApprovalError(
            f"party {party!r}: the approval of recipe {recipe_name!r} in {folder / (party + APPROVALS_SUFFIX)} does not verify against the "
            f"registered key {signing.fingerprint(key)}; it was altered or signed by another key. Its owner signs it again with `workbench approve`"
        )
    return match
