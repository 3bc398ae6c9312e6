"""The pooled oracle: one model on every site's training rows together.

No real deployment could train it: it needs the rows that privacy forbids
moving. It is here as the ceiling a federated model is measured against. The
ledger shows the rows it would have to move, marked row-level, so a report
never hides what the oracle assumes.
"""

from __future__ import annotations

import io
from typing import Any

from pydantic import Field

from workbench.context import StepContext
from workbench.contracts import Contract, Randomness, RoleNeed
from workbench.data.splits import split_part
from workbench.ledger import Protection
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.models.model import fit_model, model_bytes
from workbench.parties import Role
from workbench.steps.base import Step, register, total
from workbench.steps.training import TrainingParams

ORACLE = "oracle"


class PooledTrainParams(TrainingParams):
    save_as: str = Field("pooled", description="Name under which each site keeps the oracle's model, for `evaluate`.")


@register
class PooledTrain(Step[PooledTrainParams]):
    """Oracle baseline: trains on all sites' training rows pooled (impossible in a real deployment)."""

    kind = "pooled_train"
    Params = PooledTrainParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        return Contract(needs=(RoleNeed(Role.HOSPITAL),), reads=self.params.reads(), saves_models=(self.params.save_as,), randomness=Randomness.SEED)

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        return f"one model on {total(results, 'train_rows')} rows pooled from {total(results, 'sites')} sites"

    def run(self, ctx: StepContext) -> None:
        import numpy as np  # when the step runs, not when `workbench validate` loads it

        p = self.params
        blocks_X, blocks_y = [], []
        for party in ctx.parties:
            where = TableRef(party, p.table)
            train = split_part(ctx.store(party).table(p.table), where, test=False)
            X, y = design_matrix(train, p.features, where), label_vector(train, p.label, where)
            buffer = io.BytesIO()
            np.savez(buffer, X=X, y=y)
            received = np.load(io.BytesIO(ctx.send(party, ORACLE, "oracle.training_rows", buffer.getvalue(), Protection.NONE, row_level=True)))
            blocks_X.append(received["X"])
            blocks_y.append(received["y"])
        X, y = np.vstack(blocks_X), np.concatenate(blocks_y)
        model = fit_model(X, y, p.features, p.model, ctx.rng(ORACLE))
        for party in ctx.parties:
            ctx.send(ORACLE, party, "oracle.model", model_bytes(model), Protection.NONE)
            ctx.store(party).put(model_key(p.save_as), model)
        ctx.results[ORACLE] = {"train_rows": len(y), "train_positives": int(y.sum()), "sites": len(ctx.parties)}
