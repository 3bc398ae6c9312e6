"""Hold out a test share of each site's rows, stratified by outcome, at the site itself.

Every later comparison (local-only, federated, pooled) is scored on these same
held-out rows, so the split is a step of its own that runs once.
"""

from __future__ import annotations

import polars as pl
from pydantic import Field

from workbench.context import StepContext
from workbench.data.splits import SPLIT_COLUMN, stratified_mask
from workbench.models.features import TableRef, label_vector
from workbench.parties import Role
from workbench.steps.base import Step, StepParams, register


class SplitParams(StepParams):
    table: str = Field("data", description="Table to split, at each party.")
    label: str = Field(description="Binary outcome column to stratify by.")
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="Share of each site's rows held out for evaluation.")


@register
class Split(Step[SplitParams]):
    """Adds a Boolean `is_test` column to each site's table."""

    kind = "split"
    Params = SplitParams
    roles = (Role.HOSPITAL,)

    def run(self, ctx: StepContext) -> None:
        for done, party in enumerate(ctx.parties, start=1):
            store = ctx.store(party)
            frame = store.table(self.params.table)
            y = label_vector(frame, self.params.label, TableRef(party, self.params.table))
            is_test = stratified_mask(y, self.params.test_fraction, ctx.rng(party))
            store.put_table(self.params.table, frame.with_columns(pl.Series(SPLIT_COLUMN, is_test)))
            ctx.publish(party, {"rows": len(y), "test_rows": int(is_test.sum()), "test_positives": int(y[is_test].sum())})
            ctx.progress(done, len(ctx.parties), party)

