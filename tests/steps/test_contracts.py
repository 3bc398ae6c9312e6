"""Every registered step against its own contract, in the spirit of scikit-learn's `check_estimator`.

For each kind there is one small example chain ending in that step. The tests check three things:
- the example validates and runs;
- what the contract says the step adds, saves or provisions is there after a real run;
- a chain missing any one of its declared needs is refused by `validate`, and the runner, given that chain
  unchecked, fails too.

A new step kind must add its example here: `test_every_kind_has_an_example` fails until it does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench.chain import chain_problems
from workbench.crypto import ckks
from workbench.models import model_key
from workbench.parties import Role
from workbench.recipe import Recipe, RecipeError, parse_recipe
from workbench.runner import RunError, run_recipe
from workbench.steps import REGISTRY, Step

PARTIES = {
    "cleveland": {"role": "hospital", "data": {"dataset": "uci", "part": "cleveland"}},
    "hungary": {"role": "hospital", "data": {"dataset": "uci", "part": "hungary"}},
    "aggregator": {"role": "aggregator"},
}
SPLIT = {"kind": "split", "params": {"label": "heart_disease"}}
TRAINING = {"label": "heart_disease", "features": {"numeric": ["age", "chol"]}}
KEYS = {"kind": "ckks_keys", "params": {"custody": "clients"}}
COHORT = {
    "kind": "synthetic_cohort",
    "vendor_only_people": 100,
    "hospitals": [
        {"name": "north", "patients": 80, "emergency_rate": 0.2, "mean_age": 60, "risk_shift": 0, "vendor_coverage": 0.6},
        {"name": "south", "patients": 60, "emergency_rate": 0.3, "mean_age": 65, "risk_shift": 0, "vendor_coverage": 0.5},
    ],
}
CLINIC = {"name": "east_clinic", "patients": 50, "emergency_rate": 0.2, "mean_age": 62, "risk_shift": 0, "monitored": 0.5}
PHONE = {"phone": {"column": "phone", "type": "phone", "last_digits": 10}}
LINK = {
    "kind": "psi_link",
    "params": {
        "requester": {"table": "data", "id_column": "patient_id", "fields": PHONE},
        "provider": {"table": "data", "id_column": "person_key", "fields": PHONE},
        "passes": [{"name": "phone", "fields": ["phone"]}],
        "reveal": "payload",
        "payload_columns": ["resting_hr"],
        "workers": 1,
    },
}

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "split": [SPLIT],
    "local_train": [SPLIT, {"kind": "local_train", "params": TRAINING}],
    "pooled_train": [SPLIT, {"kind": "pooled_train", "params": TRAINING}],
    "evaluate": [SPLIT, {"kind": "local_train", "params": TRAINING}, {"kind": "evaluate", "params": {"label": "heart_disease"}}],
    "ckks_keys": [KEYS],
    "secure_sum": [SPLIT, KEYS, {"kind": "secure_sum", "params": {"sum": ["age"], "rows": "train"}}],
    "fl_train": [SPLIT, KEYS, {"kind": "fl_train", "params": {**TRAINING, "rounds": 2, "aggregation": "ckks"}}],
    "psi_link": [LINK],
    "audit": [SPLIT, {"kind": "local_train", "params": TRAINING}, {"kind": "audit", "params": {"label": "heart_disease", "models": ["local"]}}],
    "synthesize": [
        SPLIT,
        {
            "kind": "synthesize",
            "params": {
                **TRAINING,
                "columns": {
                    "heart_disease": {"levels": [False, True]},
                    "age": {"edges": [20, 45, 55, 65, 80]},
                    "chol": {"edges": [0, 200, 250, 300, 700]},
                    "sex_male": {"levels": [False, True]},
                },
            },
        },
    ],
    "vfl_train": [
        {"kind": "psi_link", "params": {**LINK["params"], "reveal": "both", "payload_columns": [], "into": "linked", "keep_unmatched": True}},
        {"kind": "split", "params": {"table": "linked", "label": "death_30d"}},
        {
            "kind": "vfl_train",
            "params": {
                "label": "death_30d",
                "features": {"numeric": ["age", "asa_class"]},
                "vendor_features": {"numeric": ["resting_hr"]},
                "iterations": 2,
            },
        },
    ],
    "encrypted_inference": [
        {"kind": "split", "params": {"label": "death_30d"}},
        {"kind": "local_train", "params": {"label": "death_30d", "features": {"numeric": ["age", "asa_class"]}}},
        {"kind": "encrypted_inference", "params": {"label": "death_30d", "model": "local", "model_owner": "north", "into": "scored"}},
    ],
}
"""The smallest chain that ends in each kind, with every need its contract declares."""


def recipe_of(kind: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    if kind == "psi_link":
        parties = {
            "north": {"role": "hospital", "data": {"dataset": "cohort", "part": "north"}},
            "vendor": {"role": "data_provider", "data": {"dataset": "cohort", "part": "vendor"}},
        }
        return {"name": f"contract-{kind}", "seed": 3, "approvals": "not_required", "datasets": {"cohort": COHORT}, "parties": parties, "steps": steps}
    if kind == "vfl_train":
        parties = {
            "north": {"role": "hospital", "data": {"dataset": "cohort", "part": "north"}},
            "south": {"role": "hospital", "data": {"dataset": "cohort", "part": "south"}},
            "vendor": {"role": "data_provider", "data": {"dataset": "cohort", "part": "vendor"}},
            "aggregator": {"role": "aggregator"},
            "key_holder": {"role": "key_holder"},
        }
        return {"name": f"contract-{kind}", "seed": 3, "approvals": "not_required", "datasets": {"cohort": COHORT}, "parties": parties, "steps": steps}
    if kind == "encrypted_inference":
        parties = {
            "north": {"role": "hospital", "data": {"dataset": "cohort", "part": "north"}},
            "east_clinic": {"role": "clinic", "data": {"dataset": "cohort", "part": "east_clinic"}},
        }
        return {
            "name": f"contract-{kind}",
            "seed": 3,
            "approvals": "not_required",
            "datasets": {"cohort": {**COHORT, "clinics": [CLINIC]}},
            "parties": parties,
            "steps": steps,
        }
    return {"name": f"contract-{kind}", "seed": 3, "approvals": "not_required", "datasets": {"uci": {"kind": "uci_heart"}}, "parties": PARTIES, "steps": steps}


def parse(raw: dict[str, Any], **options: Any) -> Recipe:
    return parse_recipe(yaml.safe_dump(raw, sort_keys=False), **options)


def test_every_kind_has_an_example_and_declares_a_contract() -> None:
    assert set(EXAMPLES) == set(REGISTRY)
    assert [kind for kind, step in REGISTRY.items() if step.contract is Step.contract] == []


def broken_chains(kind: str) -> list[tuple[str, dict[str, Any], int]]:
    """The example with one need taken away at a time, and the first step that may be refused for it: a step that provides
    the need removed (refused at a step after it: the last, or one between that the last relies on, as local_train on
    split for encrypted_inference), or parties with the role left out (refused at the last)."""
    steps = EXAMPLES[kind]
    last = parse(recipe_of(kind, steps)).steps[-1]
    contract = REGISTRY[kind](last.params).contract()
    chains = [(f"without {step['kind']}", recipe_of(kind, [s for s in steps if s is not step]), i) for i, step in enumerate(steps[:-1])]
    for need in contract.needs:
        raw = recipe_of(kind, steps)
        kept = [name for name, party in raw["parties"].items() if party["role"] != need.role.value]
        raw["steps"] = [*steps[:-1], {**steps[-1], "at": kept}]
        chains.append((f"without {need.role.value}", raw, len(steps) - 1))
    return chains


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_a_chain_missing_a_need_is_refused_by_validate_and_by_the_runner(kind: str, tmp_path: Path) -> None:
    for what, raw, first in broken_chains(kind):
        with pytest.raises(RecipeError) as refused:
            parse(raw)
        assert any(problem.loc[0] == "steps" and first <= problem.loc[1] < len(raw["steps"]) for problem in refused.value.problems), (what, refused.value)
        try:
            unchecked = parse(raw, check_chain=False)
        except RecipeError:
            continue  # refused before the chain is even walked (a role the step never accepts): nothing could run
        with pytest.raises(RunError) as failed:
            run_recipe(unchecked, tmp_path / what.replace(" ", "-"))
        assert failed.value.user_error, (what, failed.value)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_missing_columns_the_contract_reads_are_refused(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each column the step reads from the data, taken out of the data source's schema, makes validation refuse the chain."""
    recipe = parse(recipe_of(kind, EXAMPLES[kind]))
    contract = REGISTRY[kind](recipe.steps[-1].params).contract()
    source = recipe.datasets[next(iter(recipe.datasets))]
    data_columns = {column for party in recipe.parties.values() if party.data for column in source.columns(party.data.part, None) or []}
    for need in contract.reads:
        for column in need.columns:
            if column not in data_columns:
                continue  # made by an earlier step (is_test): covered by the broken chains above
            original = type(recipe.datasets[next(iter(recipe.datasets))]).columns

            def without(self: Any, part: str, base_dir: Path | None, column: str = column, original: Any = original) -> list[str] | None:
                return [c for c in original(self, part, base_dir) or [] if c != column]

            monkeypatch.setattr(type(recipe.datasets[next(iter(recipe.datasets))]), "columns", without)
            problems = chain_problems(recipe)
            monkeypatch.undo()
            assert any(column in problem.message for problem in problems), (kind, column, problems)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_what_the_contract_declares_is_produced_by_a_real_run(kind: str, tmp_path: Path) -> None:
    recipe = parse(recipe_of(kind, EXAMPLES[kind]))
    result = run_recipe(recipe, tmp_path / "run")
    spec = recipe.steps[-1]
    contract = REGISTRY[kind](spec.params).contract()
    at = recipe.step_parties(spec)
    for party in at:
        store = result.stores[party]
        for added in contract.adds:
            if store.role is added.role:
                assert set(added.columns) <= set(store.table(added.table).columns), (party, added)
        if store.role is Role.HOSPITAL:
            assert all(store.has(model_key(model)) for model in contract.saves_models), party
        if contract.provides_keys:
            assert any(store.has(item) for item in (ckks.SECRET_ITEM, ckks.PUBLIC_ITEM, ckks.AGGREGATOR_ITEM)), party
