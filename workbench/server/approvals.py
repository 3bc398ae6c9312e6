"""Owner approval from the sidebar: the same review and the same signature as `workbench approve`, as JSON.

The owner's JupyterLab is the owner's own machine: its key is a file in the workspace, named by a workspace path
(the workspace refuses any other), and the approval is filed in approvals/ beside the recipe, where a run started
from the sidebar or the CLI looks. What is signed is the review the owner was shown: the sign request carries the
digest of that review, and a recipe that changed since (another hash, another digest) is refused, not signed.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from workbench.errors import WorkbenchError
from workbench.governance.approvals import APPROVALS_DIR, ApprovalError, ReleasePolicy, approve, check_approval
from workbench.governance.review import PartyReview, dry_run_review
from workbench.recipe import Recipe
from workbench.server.workspace import RecipeFile, Workspace, WorkspaceError


class ApprovalRefused(WorkbenchError):
    """What the sidebar asked cannot be reviewed or signed; the message says why and what to do."""


def approval_states(file: RecipeFile, recipe: Recipe) -> dict[str, str]:
    """Party -> 'approved' or 'needed', for each party that holds data, when the recipe requires approvals."""
    if recipe.approvals == "not_required":
        return {}
    states = {}
    for name, party in recipe.parties.items():
        if party.data is not None:
            try:
                check_approval(file.file.parent / APPROVALS_DIR, name, recipe.name, recipe.hash())
                states[name] = "approved"
            except ApprovalError:
                states[name] = "needed"
    return states


def review(workspace: Workspace, file: RecipeFile, party: str) -> dict[str, Any]:
    """The review `workbench approve` prints, from a dry run on mock rows (seconds: call it off the server's loop)."""
    recipe = _approvable(workspace, file, party)
    return _review_json(_dry_run(recipe, party, file))


def sign(workspace: Workspace, file: RecipeFile, party: str, key: str, digest: str, min_rows: int) -> dict[str, Any]:
    """Sign the recipe for `party` with the key at workspace path `key`, if its review is still the one shown (`digest`)."""
    recipe = _approvable(workspace, file, party)
    try:
        key_path = workspace.path(key)
    except WorkspaceError as error:
        raise ApprovalRefused(f"key {key!r}: {error}") from None
    if not key_path.is_file():
        raise ApprovalRefused(f"key {key!r}: no such file in the workspace; the owner makes one with `workbench keys new --party {party}`")
    current = _dry_run(recipe, party, file)
    if current.digest() != digest:
        raise ApprovalRefused(f"recipe {recipe.name!r} changed since its review was shown (hash {recipe.hash()[:12]}): review it again before signing")
    try:
        approval = approve(file.file.parent / APPROVALS_DIR, party, recipe.name, recipe.hash(), digest, key_path, ReleasePolicy(min_rows=min_rows))
    except (WorkbenchError, ValueError) as error:
        raise ApprovalRefused(str(error)) from None
    return {"party": party, "recipe": recipe.name, "hash": approval.recipe_hash, "key": approval.key, "signed_at": approval.signed_at}


def _approvable(workspace: Workspace, file: RecipeFile, party: str) -> Recipe:
    recipe = workspace.load(file.file)
    if file.source != "workspace":
        raise ApprovalRefused(f"{file.display} ships with the package; copy it into the workspace to approve it there")
    if recipe.approvals == "not_required":
        raise ApprovalRefused(f"recipe {recipe.name!r} declares `approvals: not_required`: it runs without owners' approvals")
    if party not in recipe.parties or recipe.parties[party].data is None:
        holders = [name for name, p in recipe.parties.items() if p.data is not None]
        raise ApprovalRefused(f"party {party!r} holds no data in recipe {recipe.name!r}; the parties that approve it: {', '.join(holders)}")
    return recipe


def _dry_run(recipe: Recipe, party: str, file: RecipeFile) -> PartyReview:
    from workbench.runner import RunError

    try:
        return dry_run_review(recipe, party, file.file.parent)
    except RunError as error:
        raise ApprovalRefused(f"the dry run on mock rows failed, so there is nothing to review: {error}") from None


def _review_json(review: PartyReview) -> dict[str, Any]:
    return {**asdict(review), "digest": review.digest(), "row_level": len(review.row_level_flows)}
