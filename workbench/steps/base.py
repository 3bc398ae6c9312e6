"""The one interface every technique implements, and the registry that maps `kind:` to it.

A step is typed parameters (a pydantic model, validated once when the recipe
loads), the roles of the parties it runs at by default, and `run(ctx)`. The
runner knows steps only through `REGISTRY`; steps never import each other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.context import StepContext
from workbench.contracts import Columns, Contract
from workbench.data.splits import SPLIT_COLUMN
from workbench.parties import Role
from workbench.report.blocks import Block, Table


class StepParams(BaseModel):
    """Base of every step's parameters: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ScoringParams(StepParams):
    """What every step that scores trained models at each site (evaluate, audit) is asked for, so they read alike."""

    table: str = Field("data", description="Table holding features, label and the split at each site.")
    label: str = Field(description="Binary outcome column.")
    models: list[str] = Field(min_length=1, description="Models to score, by name.")
    scores_other_sites_models: ClassVar[bool] = False
    """Whether `name@party` (the model party saved, sent to every other site) may be named: evaluate's cross-site scores."""

    @field_validator("models")
    @classmethod
    def _models_are_named_plainly(cls, models: list[str]) -> list[str]:
        crossing = [model for model in models if "@" in model]
        if crossing and not cls.scores_other_sites_models:
            raise ValueError(
                f"{', '.join(crossing)}: this step scores each site's own models only; name them without '@party' (evaluate scores one site's model at others)"
            )
        return models

    def reads(self) -> tuple[Columns, ...]:
        """What a scoring step reads at each hospital besides the models' own features: the label and the split's column."""
        return (Columns(self.table, (self.label,), where=("label",)), Columns(self.table, (SPLIT_COLUMN,)))


P = TypeVar("P", bound=StepParams)


class Step(ABC, Generic[P]):
    kind: ClassVar[str]
    Params: ClassVar[type[StepParams]]
    roles: ClassVar[tuple[Role, ...]]
    """Roles of the parties the step runs at when the recipe gives no `at:`; also the roles it accepts."""

    def __init__(self, params: P) -> None:
        self.params = params

    def default_parties(self, roles: Mapping[str, Role]) -> list[str]:
        """The parties the step runs at when the recipe gives no `at:`, from every party's role: by default those whose
        role it accepts; a step that also runs at a party its parameters name (encrypted_inference's model_owner)
        says so here."""
        return [party for party, role in roles.items() if role in self.roles]

    def contract(self) -> Contract:
        """What this step needs and produces with these parameters: checked by `workbench validate` before anything runs.

        Every registered step overrides it (tests/steps/test_contracts.py holds each to its contract).
        """
        return Contract()

    @abstractmethod
    def run(self, ctx: StepContext) -> None:
        """Do the work at the step's parties; put results for the coordinator in `ctx.results` via `ctx.publish`."""

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        """What the step's results come to, in a few words for an 80-column terminal (`workbench run` prints one line a
        step; full tables stay in report.html)."""
        return ""

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        """Turn this step's metrics into report blocks; by default a table of what each party published."""
        columns = list(dict.fromkeys(key for summary in results.values() for key in summary))
        if not columns:
            return []
        rows = [[party, *(summary.get(column) for column in columns)] for party, summary in results.items()]
        return [Table(f"Published by each party ({cls.kind})", ["party", *columns], rows)]


class SiteStep(Step[P]):
    """A step that does the same work at each of its parties in turn, each on its own store only.

    Subclasses implement `run_at`, which returns the summary that party publishes
    to the coordinator; the loop, publishing and progress are shared.
    """

    def run(self, ctx: StepContext) -> None:
        for done, party in enumerate(ctx.parties, start=1):
            ctx.publish(party, self.run_at(ctx, party))
            ctx.progress(done, len(ctx.parties), party)
        self.across_sites(ctx)

    def across_sites(self, ctx: StepContext) -> None:
        """What the step computes over all its parties once each has run (e.g. a masked total); by default nothing."""

    @abstractmethod
    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        """Work at one party; return the aggregate summary it publishes (never row-level data)."""


def total(results: dict[str, Any], key: str) -> int:
    """A count every party published under `key`, summed over the parties: what a headline quotes."""
    return int(sum(summary.get(key, 0) for summary in results.values()))


REGISTRY: dict[str, type[Step[Any]]] = {}


def register(cls: type[Step[Any]]) -> type[Step[Any]]:
    if cls.kind in REGISTRY:
        raise ValueError(f"step kind {cls.kind!r} is registered twice ({REGISTRY[cls.kind].__name__} and {cls.__name__})")
    REGISTRY[cls.kind] = cls
    return cls
