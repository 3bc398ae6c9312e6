"""Hold out a test share of each site's rows, stratified by outcome, at the site itself.

Every later comparison (local-only, federated, pooled) is scored on these same
held-out rows, so the split is a step of its own that runs once.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from workbench.context import StepContext
from workbench.contracts import Columns, Contract, Randomness, RoleNeed
from workbench.data.splits import SPLIT_COLUMN, VALIDATION_COLUMN, stratified_folds, stratified_mask
from workbench.models.features import FeatureError, TableRef, label_vector
from workbench.parties import Role
from workbench.steps.base import SiteStep, StepParams, register, total


class SplitParams(StepParams):
    table: str = Field("data", description="Table to split, at each party.")
    label: str = Field(description="Binary outcome column to stratify by.")
    test_fraction: float | None = Field(0.3, gt=0.0, lt=1.0, description="Share of each site's rows held out for evaluation; null with folds.")
    validation_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description=f"Share of each site's rows set aside from training for choosing settings (`{VALIDATION_COLUMN}`); "
        "evaluate scores them with part: validation, and federated training's per-round scores use them instead of the test rows.",
    )
    folds: int | None = Field(
        None, ge=2, le=100, description="k-fold cross-validation: hold out fold `fold` of k stratified folds instead of test_fraction of the rows."
    )
    fold: int = Field(
        0, ge=0, description="Which fold is held out (0 to folds-1); sweep it to run every fold, e.g. --sweep 'steps[split].params.fold=0,1,2,3,4'."
    )
    repeat: int = Field(
        0, ge=0, le=100_000, description="Which repeated split this is: each number draws other rows from the recipe seed; sweep it for repeated splits."
    )
    overwrite: bool = Field(
        False,
        description=f"Replace an `{SPLIT_COLUMN}` column the table already has (e.g. a split that came with the data); "
        "without it such a table is refused, so a given split is never silently redrawn.",
    )

    @model_validator(mode="after")
    def _rows_left_to_train(self) -> SplitParams:
        if self.folds is not None and self.test_fraction is not None and "test_fraction" in self.model_fields_set:
            raise ValueError(f"folds {self.folds} holds out 1/{self.folds} of the rows, and test_fraction another share; set test_fraction: null with folds")
        if self.folds is None and self.test_fraction is None:
            raise ValueError("test_fraction is null and no folds are given: nothing would be held out; give one of them")
        if self.fold >= (self.folds or 1):
            raise ValueError(
                f"fold {self.fold} does not exist: " + (f"with folds {self.folds}, use 0 to {self.folds - 1}" if self.folds else "set folds first")
            )
        if self.held_out() + self.validation_fraction >= 1.0:
            raise ValueError(
                f"a held-out share of {self.held_out():.3g} and validation_fraction {self.validation_fraction} leave no rows to train on; "
                "their sum must stay below 1"
            )
        return self

    def held_out(self) -> float:
        """The share of rows held out for testing: 1/folds under cross-validation, else test_fraction."""
        return 1.0 / self.folds if self.folds else float(self.test_fraction or 0.0)

    def rng_labels(self, party: str) -> tuple[str, ...]:
        """What the split's draws derive from besides the recipe seed and the step's name (the manifest says so)."""
        return (party,) if self.repeat == 0 else (party, f"repeat-{self.repeat}")

    def columns(self) -> tuple[str, ...]:
        return (SPLIT_COLUMN, VALIDATION_COLUMN) if self.validation_fraction else (SPLIT_COLUMN,)


@register
class Split(SiteStep[SplitParams]):
    """Adds a Boolean `is_test` column to each site's table (and `is_validation`, with a validation_fraction)."""

    kind = "split"
    Params = SplitParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        p = self.params
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL),),
            reads=(Columns(p.table, (p.label,), where=("label",)),),
            adds=(Columns(p.table, p.columns(), replaces=p.overwrite),),
            randomness=Randomness.SEED,
        )

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        return f"{total(results, 'test_rows')} of {total(results, 'rows')} rows held out at {len(results)} parties"

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        import numpy as np  # when the step runs, not when `workbench validate` loads it
        import polars as pl

        p, store = self.params, ctx.store(party)
        frame = store.table(p.table)
        if SPLIT_COLUMN in frame.columns and not p.overwrite:
            raise FeatureError(f"{TableRef(party, p.table)} already has an {SPLIT_COLUMN!r} column; set overwrite: true to draw a new split")
        y = label_vector(frame, p.label, TableRef(party, p.table))
        rng = ctx.rng(*p.rng_labels(party))
        is_test = stratified_folds(y, p.folds, rng) == p.fold if p.folds else stratified_mask(y, p.held_out(), rng)
        ctx.manifest.setdefault("held_out_rows", {})[party] = (
            f"numpy default_rng from recipe seed {ctx.seed} and the CRC-32 of {[ctx.step, *p.rng_labels(party)]}"
            + (f": fold {p.fold} of {p.folds} stratified folds" if p.folds else f": {p.test_fraction} of each class")
        )
        columns = [pl.Series(SPLIT_COLUMN, is_test)]
        summary = {"rows": len(y), "test_rows": int(is_test.sum()), "test_positives": int(y[is_test].sum())}
        if p.validation_fraction:  # drawn from the rows left, in the same stratified way, after the test part (which stays as without it)
            is_validation = np.zeros(len(y), dtype=bool)
            is_validation[~is_test] = stratified_mask(y[~is_test], p.validation_fraction / (1 - p.held_out()), rng)
            columns.append(pl.Series(VALIDATION_COLUMN, is_validation))
            summary |= {"validation_rows": int(is_validation.sum()), "validation_positives": int(y[is_validation].sum())}
        store.put_table(p.table, frame.with_columns(columns))
        return summary
