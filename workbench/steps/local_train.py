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
from workbench.privacy.dp_params import LocalDPParams
from workbench.report.blocks import Block
from workbench.report.privacy import dp_block
from workbench.steps.base import SiteStep, register, total
from workbench.steps.training import TrainingParams


class LocalTrainParams(TrainingParams):
    dp: LocalDPParams | None = Field(
        None,
        description="Sample-level differential privacy: DP-SGD (Poisson batches, per-row clipping, Gaussian noise) for `steps` "
        "steps instead of an exact fit, with the site's own accountant; null: the exact (L-BFGS) fit.",
    )
    save_as: str = Field("local", description="Name under which each site keeps its model, for `evaluate`.")


@register
class LocalTrain(SiteStep[LocalTrainParams]):
    """A model at each site trained on its own training rows only; nothing leaves the site but row counts."""

    kind = "local_train"
    Params = LocalTrainParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        noisy = self.params.dp is not None and not self.params.dp.seeded
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL),),
            reads=self.params.reads(),
            saves_models=(self.params.save_as,),
            randomness=Randomness.NOISE if noisy else Randomness.SEED,
        )

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        dp = [result["dp"]["epsilon"] for result in results.values() if "dp" in result]
        privacy = f", DP epsilon <= {max(dp):.2f}" if dp else ""
        return f"a model at each of {len(results)} parties, on {total(results, 'train_rows')} rows in all{privacy}"

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        p, store = self.params, ctx.store(party)
        where = TableRef(party, p.table)
        train = split_part(store.table(p.table), where, test=False)
        X, y = design_matrix(train, p.features, where), label_vector(train, p.label, where)
        if p.dp is None:
            store.put(model_key(p.save_as), fit_model(X, y, p.features, p.model, ctx.rng(party)))
            return {"train_rows": len(y), "train_positives": int(y.sum())}
        from workbench.privacy.dp_sgd import fit_dp_model

        model, spent = fit_dp_model(X, y, p.features, p.model, p.dp, party, ctx.rng(party))
        store.put(model_key(p.save_as), model)
        source = f"recipe seed {ctx.seed}, derived for {party!r}" if p.dp.seeded else f"fresh at {party!r} (the operating system's; not kept)"
        ctx.manifest.setdefault("dp", {})[party] = {**spent, "noise_seed": source}
        return {"train_rows": len(y), "dp": spent}  # the positives count reads the rows without noise: not published under DP

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        spent = {party: result["dp"] for party, result in results.items() if "dp" in result}
        return [dp_block(spent)] if spent else super().summarize(results)
