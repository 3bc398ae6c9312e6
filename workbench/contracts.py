"""What a step needs and what it produces, declared as data, so a chain can be checked before anything runs.

Each step class answers `contract()` from its validated parameters: the roles
it needs among its parties (and how many), the tables and columns it reads at
each role, the tables and columns it adds, the models it reads and saves, the
keys it needs or provides, and where its randomness comes from.
`workbench.chain` walks a recipe's steps with these contracts, so `workbench
validate`, the builder and the sidebar refuse a broken chain with the path and
line of the field at fault, in the same words; `tests/steps/test_contracts.py`
checks every registered step against its own contract, as scikit-learn's
`check_estimator` does for estimators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from workbench.ledger import Protection
from workbench.parties import Role

Loc = tuple[str | int, ...]


class Randomness(StrEnum):
    """Where a step's random choices come from: the seed alone is reproducible to the bit; fresh keys are not, on purpose."""

    NONE = "none"
    SEED = "recipe seed"
    SEED_AND_SYSTEM = "recipe seed, and the operating system for keys and encryption"
    NOISE = "recipe seed, and the operating system for privacy noise, which changes the results from run to run"


@dataclass(frozen=True)
class RoleNeed:
    """How many of the step's parties must have `role`."""

    role: Role
    at_least: int = 1
    at_most: int | None = None

    def describe(self) -> str:
        if self.at_most == self.at_least:
            return f"exactly {self.at_least} {self.role.value}" + ("" if self.at_least == 1 else "s")
        many = f"at least {self.at_least} {self.role.value}" + ("" if self.at_least == 1 else "s")
        return many if self.at_most is None else f"{many} and at most {self.at_most}"


@dataclass(frozen=True)
class Columns:
    """Columns of one table at the step's parties with `role`; `where` is the params field that names them (for errors)."""

    table: str
    columns: tuple[str, ...] = ()
    role: Role = Role.HOSPITAL
    where: Loc = ("table",)
    table_at: Loc = ("table",)
    """The params field that names the table, where a missing table is reported."""
    copies: str | None = None
    """For an added table: the table at the same party whose columns it starts from (e.g. psi_link's `into` from `table`)."""
    replaces: bool = False
    """For added columns: whether the step may overwrite them when the table already has them (split's `overwrite`)."""


@dataclass(frozen=True)
class Technique:
    """How a step that trains a model protects what crosses boundaries: the report sets steps of one `family` side by
    side (utility, cost, ledger) against the first whose `protection` is none."""

    family: str
    """What the steps do, e.g. "federated training"; only steps of one family are compared."""
    name: str
    """The variant's name in a table, e.g. the aggregation kind."""
    title: str
    """The variant's name in prose, e.g. "CKKS-encrypted aggregation"."""
    protection: Protection


@dataclass(frozen=True)
class Contract:
    needs: tuple[RoleNeed, ...] = ()
    reads: tuple[Columns, ...] = ()
    adds: tuple[Columns, ...] = ()
    reads_models: tuple[str, ...] = ()
    """Models the step reads at every hospital it runs at, by name (`evaluate`'s `models`)."""
    saves_models: tuple[str, ...] = ()
    needs_keys: tuple[Role, ...] = ()
    """Roles at which the step needs CKKS keys an earlier `ckks_keys` step provisioned."""
    provides_keys: str | None = None
    """The custody (`clients`, `key_holder`) of the keys the step provisions at its parties; a later step that needs keys
    under custody key_holder must then also run at the key holder, the only party that can decrypt."""
    refuses_custody: dict[str | None, str] = field(default_factory=dict)
    """Key custody -> why the step cannot run with keys under it (e.g. a server-side optimizer where the aggregator
    must not read the average): the chain reports it at the step's `params`."""
    randomness: Randomness = Randomness.NONE
    exact: bool = True
    """Whether what the step publishes, and the models it saves, repeat bit for bit; False: to the precision of its
    encryption (CKKS noise), which is what tests of reproducibility and comparisons of utility hold it to."""
    technique: Technique | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
