"""Recipes and their problems as the JSON the sidebar renders: parties, the chain of steps, problems per step."""

from __future__ import annotations

from typing import Any

import yaml

from workbench.recipe import Problem, RecipeError
from workbench.server.approvals import approval_states
from workbench.server.workspace import RecipeFile, Workspace
from workbench.steps import REGISTRY


def problem_json(problem: Problem) -> dict[str, Any]:
    """A problem with the index of the step it belongs to, so the panel can show it against that step."""
    loc = problem.loc
    step = loc[1] if len(loc) > 1 and loc[0] == "steps" and isinstance(loc[1], int) else None
    return {"path": problem.path, "message": problem.message, "line": problem.line, "step": step}


def validate(workspace: Workspace, file: RecipeFile) -> list[dict[str, Any]]:
    try:
        workspace.load(file.file)
    except RecipeError as error:
        return [problem_json(p) for p in error.problems]
    return []


def recipe_card(workspace: Workspace, file: RecipeFile) -> dict[str, Any]:
    """The card for a recipe; an invalid one still shows what can be read of it, with its problems."""
    base = {"ref": file.ref, "source": file.source, "path": file.display}
    try:
        recipe = workspace.load(file.file)
    except RecipeError as error:
        return {**base, **_raw_card(workspace, file), "problems": [problem_json(p) for p in error.problems]}
    steps = []
    for index, (name, spec) in enumerate(zip(recipe.step_names(), recipe.steps)):
        doc = (REGISTRY[spec.kind].__doc__ or "").strip().splitlines()[0]
        steps.append({"index": index, "name": name, "kind": spec.kind, "at": recipe.step_parties(spec), "summary": doc})
    states = approval_states(file, recipe)
    parties = [{"name": n, "role": p.role.value, "description": p.description, "approval": states.get(n)} for n, p in recipe.parties.items()]
    return {**base, "name": recipe.name, "description": recipe.description, "approvals": recipe.approvals, "parties": parties, "steps": steps, "problems": []}


def _raw_card(workspace: Workspace, file: RecipeFile) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(workspace.recipe_text(file.file))
    except (RecipeError, yaml.YAMLError):
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    parties: dict[Any, Any] = raw["parties"] if isinstance(raw.get("parties"), dict) else {}
    steps: list[Any] = raw["steps"] if isinstance(raw.get("steps"), list) else []
    return {
        "name": str(raw.get("name") or file.file.name),
        "description": str(raw.get("description") or ""),
        "approvals": "not_required",  # nothing can be approved until the recipe is valid
        "parties": [
            {"name": str(n), "role": str((p or {}).get("role", "?")) if isinstance(p, dict) else "?", "description": "", "approval": None}
            for n, p in parties.items()
        ],
        "steps": [
            {
                "index": i,
                "name": str(s.get("name") or s.get("kind")) if isinstance(s, dict) else "?",
                "kind": str(s.get("kind")) if isinstance(s, dict) else "?",
                "at": [],
                "summary": "",
            }
            for i, s in enumerate(steps)
        ],
    }
