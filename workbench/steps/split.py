"""Hold out a test share of each site's rows, stratified by outcome, at the site itself.

Every later comparison (local-only, federated, pooled) is scored on these same
held-out rows, so the split is a step of its own that runs once.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workbench.context import StepContext
from workbench.contracts import Columns, Contract, Randomness, RoleNeed
from workbench.data.splits import SPLIT_COLUMN, stratified_mask
from workbench.models.features import FeatureError, TableRef, label_vector
from workbench.parties import Role
from workbench.steps.base import SiteStep, StepParams, register, total


class SplitParams(StepParams):
    table: str = Field("data", description="Table to split, at each party.")
    label: str = Field(description="Binary outcome column to stratify by.")
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="Share of each site's rows held out for evaluation.")
    overwrite: bool = Field(
        False,
        description=f"Replace an `{SPLIT_COLUMN}` column the table already has (e.g. a split that came with the data); "
        "without it such a table is refused, so a given split is never silently redrawn.",
    )


@register
class Split(SiteStep[SplitParams]):
    """Adds a Boolean `is_test` column to each site's table."""

    kind = "split"
    Params = SplitParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        p = self.params
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL),),
            reads=(Columns(p.table, (p.label,), where=("label",)),),
            adds=(Columns(p.table, (SPLIT_COLUMN,), replaces=p.overwrite),),
            randomness=Randomness.SEED,
        )

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        return f"{total(results, 'test_rows')} of {total(results, 'rows')} rows held out at {len(results)} parties"

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        import polars as pl  # when the step runs, not when `workbench validate` loads it

        p, store = self.params, ctx.store(party)
        frame = store.table(p.table)
        if SPLIT_COLUMN in frame.columns and not p.overwrite:
            raise FeatureError(f"{TableRef(party, p.table)} already has an {SPLIT_COLUMN!r} column; set overwrite: true to draw a new split")
        y = label_vector(frame, p.label, TableRef(party, p.table))
        is_test = stratified_mask(y, p.test_fraction, ctx.rng(party))
        store.put_table(p.table, frame.with_columns(pl.Series(SPLIT_COLUMN, is_test)))
        return {"rows": len(y), "test_rows": int(is_test.sum()), "test_positives": int(y[is_test].sum())}
