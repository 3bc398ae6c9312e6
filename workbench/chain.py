"""Walk a recipe's chain with its steps' contracts: what would fail at run time is refused at validation.

The walk keeps, for every party, the tables it will hold (with their columns
where the data source's schema is known before running), its models and its
keys, and checks each step's needs against them in order. Each problem points
at the field that names the missing thing (`steps[3].params.features`), so the
CLI, the builder widget and the sidebar show it next to the step. A column the
walk cannot know (a file that is not there yet) is not guessed at: the run
checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.contracts import Columns, Contract
from workbench.parties import Role
from workbench.recipe_problems import Loc, Problem
from workbench.steps import REGISTRY

if TYPE_CHECKING:  # recipe.py calls this module while it validates a recipe
    from workbench.recipe import Recipe


@dataclass
class _PartyState:
    role: Role
    tables: dict[str, set[str] | None] = field(default_factory=dict)
    """Table name -> its columns, or None where the schema is unknown before running."""
    models: set[str] = field(default_factory=set)
    custody: str | None = None
    """Custody of the CKKS keys this party holds, if any."""


def chain_problems(recipe: Recipe, base_dir: Path | None = None) -> list[Problem]:
    """Every need of every step that no data source or earlier step provides, located at the step's field."""
    parties = {name: _PartyState(spec.role) for name, spec in recipe.parties.items()}
    for name, party in recipe.parties.items():
        if party.data is not None:
            source = recipe.datasets[party.data.dataset]
            part = party.data.part or source.part_names()[0]
            parties[name].tables[party.data.table] = _known(source.columns(part, base_dir))
    problems: list[Problem] = []
    for index, (step_name, spec) in enumerate(zip(recipe.step_names(), recipe.steps)):
        contract = REGISTRY[spec.kind](spec.params).contract()
        at = recipe.step_parties(spec)
        problems.extend(_StepCheck(("steps", index), spec.kind, step_name, at, parties, contract).problems())
        _apply(contract, at, parties)  # as if it had run: one broken step is one problem, not one per later step
    return problems


def _known(columns: list[str] | None) -> set[str] | None:
    return None if columns is None else set(columns)


@dataclass
class _StepCheck:
    loc: Loc
    kind: str
    name: str
    at: list[str]
    parties: dict[str, _PartyState]
    contract: Contract

    def problems(self) -> list[Problem]:
        return [*self._roles(), *self._keys(), *self._reads(), *self._models()]

    def _with(self, role: Role) -> list[str]:
        return [party for party in self.at if self.parties[party].role is role]

    def _roles(self) -> list[Problem]:
        problems = []
        for need in self.contract.needs:
            count = len(self._with(need.role))
            if count < need.at_least or (need.at_most is not None and count > need.at_most):
                problems.append(
                    Problem(
                        (*self.loc, "at"),
                        f"step {self.name!r} ({self.kind}) needs {need.describe()} among its parties; "
                        f"it runs at {', '.join(self.at) or 'none'} ({count} {need.role.value}); list them in `at:` or add parties",
                    )
                )
        return problems

    def _keys(self) -> list[Problem]:
        if not self.contract.needs_keys:
            return []
        lacking = [party for party in self.at if self.parties[party].role in self.contract.needs_keys and self.parties[party].custody is None]
        if lacking:
            return [
                Problem(
                    (*self.loc, "params"),
                    f"step {self.name!r} ({self.kind}) needs CKKS keys at {', '.join(lacking)}, and no earlier "
                    "ckks_keys step provisioned them: add a `ckks_keys` step before it, at the same parties",
                )
            ]
        custodies = {self.parties[party].custody for party in self.at if self.parties[party].role in self.contract.needs_keys}
        refused = [self.contract.refuses_custody[custody] for custody in sorted(custodies, key=str) if custody in self.contract.refuses_custody]
        if refused:
            return [Problem((*self.loc, "params"), f"step {self.name!r} ({self.kind}): {refused[0]}")]
        if "key_holder" in custodies and not any(self.parties[party].custody for party in self._with(Role.KEY_HOLDER)):
            return [
                Problem(
                    (*self.loc, "at"),
                    f"step {self.name!r} ({self.kind}) uses keys under custody key_holder, so the key holder must be "
                    "among its parties: it alone can decrypt the masked totals",
                )
            ]
        return []

    def _reads(self) -> list[Problem]:
        problems, absent = [], set()
        for need in self.contract.reads:
            parties = self._with(need.role)
            lacking = [party for party in parties if need.table not in self.parties[party].tables]
            if lacking and (need.table, need.role) not in absent:
                absent.add((need.table, need.role))
                held = sorted({table for party in lacking for table in self.parties[party].tables}) or ["none"]
                problems.append(
                    Problem(
                        (*self.loc, "params", *need.table_at),
                        f"no table {need.table!r} at {_parties(lacking)} when step {self.name!r} ({self.kind}) runs (tables held then: {', '.join(held)})",
                    )
                )
            for column_group in _by_missing(need, [p for p in parties if p not in lacking], self.parties):
                missing, at = column_group
                problems.append(
                    Problem(
                        (*self.loc, "params", *need.where),
                        f"table {need.table!r} at {_parties(at)} has no column(s) "
                        f"{', '.join(missing)} when step {self.name!r} ({self.kind}) runs{_hint(missing)}",
                    )
                )
        for added in self.contract.adds:
            for clash, at in _by_clash(added, self._with(added.role), self.parties):
                problems.append(
                    Problem(
                        (*self.loc, "params", *added.where),
                        f"table {added.table!r} at {_parties(at)} already has column(s) "
                        f"{', '.join(clash)}, which step {self.name!r} ({self.kind}) would overwrite; set overwrite: true "
                        "to replace them, or drop them from the data",
                    )
                )
        return problems

    def _models(self) -> list[Problem]:
        from workbench.models import split_model_ref

        problems = []
        hospitals = self._with(Role.HOSPITAL)
        for ref in self.contract.reads_models:
            model, owner = split_model_ref(ref)
            if owner is not None and owner not in hospitals:
                problems.append(
                    Problem(
                        (*self.loc, "params", "models"),
                        f"model {ref!r}: {owner!r} is not a hospital step {self.name!r} ({self.kind}) runs at "
                        f"({', '.join(hospitals) or 'none'}), so it cannot send its {model!r} model; add it to `at:` or name another party",
                    )
                )
                continue
            lacking = [party for party in ([owner] if owner else hospitals) if model not in self.parties[party].models]
            if lacking:
                problems.append(
                    Problem(
                        (*self.loc, "params", "models"),
                        f"no earlier step trains a model {model!r} at {', '.join(lacking)}; "
                        "a training step's save_as names its model (local_train: local, pooled_train: pooled, fl_train: federated)",
                    )
                )
        return problems


def _parties(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _by_missing(need: Columns, parties: list[str], states: dict[str, _PartyState]) -> list[tuple[list[str], list[str]]]:
    """(missing columns, parties missing exactly those), for the parties whose table's schema is known."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for party in parties:
        known = states[party].tables[need.table]
        missing = tuple(column for column in need.columns if known is not None and column not in known)
        if missing:
            groups.setdefault(missing, []).append(party)
    return [(list(missing), at) for missing, at in groups.items()]


def _by_clash(added: Columns, parties: list[str], states: dict[str, _PartyState]) -> list[tuple[list[str], list[str]]]:
    """(columns an added column set would overwrite, parties where it would), unless the step may replace them."""
    if added.replaces or added.copies is not None:
        return []
    groups: dict[tuple[str, ...], list[str]] = {}
    for party in parties:
        known = states[party].tables.get(added.table)
        clash = tuple(column for column in added.columns if known is not None and column in known)
        if clash:
            groups.setdefault(clash, []).append(party)
    return [(list(clash), at) for clash, at in groups.items()]


def _hint(missing: list[str]) -> str:
    from workbench.data.splits import SPLIT_COLUMN, VALIDATION_COLUMN

    if SPLIT_COLUMN in missing:
        return "; add a `split` step before it"
    return "; give the `split` step a validation_fraction" if VALIDATION_COLUMN in missing else ""


def _apply(contract: Contract, at: list[str], parties: dict[str, _PartyState]) -> None:
    """What the step leaves behind at its parties, for the steps after it."""
    for party in at:
        state = parties[party]
        for added in contract.adds:
            if state.role is not added.role:
                continue
            base = state.tables.get(added.copies or added.table)  # a table the walk does not know stays unknown
            state.tables[added.table] = None if base is None else base | set(added.columns)
        if state.role is Role.HOSPITAL:
            state.models |= set(contract.saves_models)
        if contract.provides_keys:
            state.custody = contract.provides_keys
