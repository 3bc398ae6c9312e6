"""Each site trains on its own rows only: the local-only baseline every other method must beat."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workbench.context import StepContext
from workbench.data.splits import split_part
from workbench.models import model_key
from workbench.models.features import FeatureSpec, TableRef, design_matrix, label_vector
from workbench.models.logistic import LogisticModel
from workbench.parties import Role
from workbench.steps.base import SiteStep, StepParams, register


class LocalTrainParams(StepParams):
    table: str = Field("data", description="Table holding features and label at each site.")
    label: str = Field(description="Binary outcome column.")
    features: FeatureSpec = Field(description="Columns the model uses and their encoding.")
    l2: float = Field(0.01, ge=0.0, description="L2 penalty on standardized coefficients.")
    model: str = Field("local", description="Name under which each site keeps its model, for `evaluate`.")


@register
class LocalTrain(SiteStep[LocalTrainParams]):
    """Logistic regression at each site on its own training rows; nothing leaves the site but row counts."""

    kind = "local_train"
    Params = LocalTrainParams
    roles = (Role.HOSPITAL,)

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        p, store = self.params, ctx.store(party)
        where = TableRef(party, p.table)
        train = split_part(store.table(p.table), where, test=False)
        X, y = design_matrix(train, p.features, where), label_vector(train, p.label, where)
        store.put(model_key(p.model), LogisticModel.fit(X, y, p.features, p.l2))
        return {"train_rows": len(y), "train_positives": int(y.sum())}
