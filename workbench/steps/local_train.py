"""Each site trains on its own rows only: the local-only baseline every other method must beat."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workbench.context import StepContext
from workbench.contracts import Contract, Randomness, RoleNeed
from workbench.data.splits import split_part
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.models.model import fit_model
from workbench.parties import Role
from workbench.steps.base import SiteStep, register, total
from workbench.steps.training import TrainingParams


class LocalTrainParams(TrainingParams):
    save_as: str = Field("local", description="Name under which each site keeps its model, for `evaluate`.")


@register
class LocalTrain(SiteStep[LocalTrainParams]):
    """A model at each site trained on its own training rows only; nothing leaves the site but row counts."""

    kind = "local_train"
    Params = LocalTrainParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        return Contract(needs=(RoleNeed(Role.HOSPITAL),), reads=self.params.reads(), saves_models=(self.params.save_as,), randomness=Randomness.SEED)

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        return f"a model at each of {len(results)} parties, on {total(results, 'train_rows')} rows in all"

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        p, store = self.params, ctx.store(party)
        where = TableRef(party, p.table)
        train = split_part(store.table(p.table), where, test=False)
        X, y = design_matrix(train, p.features, where), label_vector(train, p.label, where)
        store.put(model_key(p.save_as), fit_model(X, y, p.features, p.model, ctx.rng(party)))
        return {"train_rows": len(y), "train_positives": int(y.sum())}
