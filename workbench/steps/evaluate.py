"""Score models on each site's held-out rows, at the site; only the scores, with their intervals, reach the coordinator.

Every figure comes with an interval over the sampling of the held-out rows, and
every model is compared with a baseline on the same rows by DeLong's paired test,
so the report calls a difference a gain only where the rows show one
(`models/uncertainty.py`). A model named `name@party` is the one that party saved,
sent to each other site (the recipe declares it by naming it): a site's local model
scored on another's patients, the field's cross-site evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from workbench.context import StepContext
from workbench.contracts import Columns, Contract, Randomness, RoleNeed
from workbench.data.splits import VALIDATION_COLUMN, split_part, validation_part
from workbench.ledger import Protection
from workbench.models import model_key, split_model_ref
from workbench.models.features import FeatureError, TableRef, label_vector
from workbench.models.thresholds import ThresholdRule
from workbench.parties import Role
from workbench.report.blocks import Block, Figure
from workbench.report.figures import auc_intervals
from workbench.steps.base import ScoringParams, SiteStep, register

if TYPE_CHECKING:
    from workbench.models.model import RowScorer
    from workbench.models.pooled_scores import PooledLayout

METRICS = ("auc", "auprc", "brier", "accuracy")
MODEL_MESSAGE = "model.parameters"
POOLED_SUMMARY = "evaluate/pooled-test-counts"
"""Where a site keeps its pooled-test counts between scoring and the masked total."""


class EvaluateParams(ScoringParams):
    scores_other_sites_models: ClassVar[bool] = True

    models: list[str] = Field(
        default_factory=lambda: ["local"],
        min_length=1,
        description="Models to score, by name; `name@party` scores the model that party saved at every site (it is sent to them).",
    )
    baseline: str | None = Field(None, description="Model every other is compared with (paired DeLong test); default: local if scored, else the first.")
    level: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of every interval.")
    resamples: int = Field(1000, ge=100, le=100_000, description="Bootstrap resamples for the intervals of AUPRC, Brier and accuracy.")
    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Predicted probability at or above which a row counts as positive (accuracy, sensitivity, specificity)."
    )
    threshold_rule: ThresholdRule | None = Field(
        None,
        description="Instead of a fixed threshold, a rule ({rule: youden} or {rule: sensitivity, target: 0.9}) each site applies per model "
        "to its validation rows.",
    )
    calibration_bins: int = Field(10, ge=2, le=100, description="Equal-width bins of predicted probability for ECE and the reliability curve.")
    part: Literal["test", "validation"] = Field(
        "test", description="Rows to score: the held-out test rows, or the validation rows (`split`'s validation_fraction) for choosing settings."
    )
    keep_predictions: str | None = Field(
        None,
        description="Name of a table each site keeps its scored rows in, with a column prediction_MODEL per model: for analyses at the "
        "site (the report reads none of it; nothing of it leaves).",
    )
    pooled: bool = Field(
        False, description="Also score every site's held-out rows together, from masked totals of per-site counts (no prediction leaves a site)."
    )
    auc_bins: int = Field(
        4096, ge=16, le=1 << 16, description="Bins of predicted probability the pooled AUC counts in; more bins, a tighter bound on its error."
    )

    @model_validator(mode="after")
    def _baseline_is_scored(self) -> EvaluateParams:
        if self.baseline is not None and self.baseline not in self.models:
            raise ValueError(f"baseline {self.baseline!r} is not among the models scored ({', '.join(self.models)}); add it to models")
        return self

    @model_validator(mode="after")
    def _a_rule_chooses_off_the_scored_rows(self) -> EvaluateParams:
        if self.threshold_rule is not None and self.part == "validation":
            raise ValueError("a threshold rule chooses on the validation rows, so it cannot score them too; use part: test, or a fixed threshold")
        if self.threshold_rule is not None and "threshold" in self.model_fields_set:
            raise ValueError("threshold and threshold_rule both set the threshold; give one of them")
        return self

    def validation_field(self) -> tuple[str, ...]:
        """The field that makes the step read validation rows (for a missing column's error), or () if none does."""
        return ("part",) if self.part == "validation" else ("threshold_rule",) if self.threshold_rule is not None else ()

    def prediction_columns(self) -> tuple[str, ...]:
        """The columns `keep_predictions` adds, one a model (`local@cleveland` -> prediction_local_at_cleveland)."""
        return tuple(f"prediction_{ref.replace('@', '_at_')}" for ref in self.models)

    def baseline_model(self) -> str:
        return self.baseline or ("local" if "local" in self.models else self.models[0])


@register
class Evaluate(SiteStep[EvaluateParams]):
    """Per-site AUC, AUPRC, Brier score, accuracy and calibration of each named model on the same held-out rows, with
    95 % intervals and a paired test against the baseline."""

    kind = "evaluate"
    Params = EvaluateParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        p = self.params
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL, at_least=2 if p.pooled else 1),),
            reads=(*p.reads(), *((Columns(p.table, (VALIDATION_COLUMN,), where=p.validation_field()),) if p.validation_field() else ())),
            reads_models=tuple(p.models),
            adds=(Columns(p.keep_predictions, p.prediction_columns(), where=("keep_predictions",), copies=p.table),) if p.keep_predictions else (),
            randomness=Randomness.SEED_AND_SYSTEM if p.pooled else Randomness.SEED,  # the bootstrap's draws; pooling's masks are fresh
        )

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        from workbench.models.scoring import held_out_scores, versus
        from workbench.models.uncertainty import Resamples

        p, store = self.params, ctx.store(party)
        where = TableRef(party, p.table)
        frame = store.table(p.table)
        test = split_part(frame, where, test=True) if p.part == "test" else validation_part(frame, where)
        y = label_vector(test, p.label, where)
        resamples = Resamples.draw(y, ctx.rng("bootstrap", party), p.resamples)  # one draw for every model: common random numbers
        models = {ref: _model_at(ctx, ref, party) for ref in p.models}
        probabilities = {ref: model.predict_rows(test, where) for ref, model in models.items()}
        thresholds = self._thresholds(frame, where, models)
        baseline = p.baseline_model()
        scores: dict[str, Any] = {}
        for ref, probability in probabilities.items():
            scores[ref] = held_out_scores(y, probability, resamples, p.level, thresholds[ref], p.calibration_bins)
            if p.threshold_rule is not None:
                scores[ref]["threshold_rule"] = p.threshold_rule.model_dump(exclude_none=True) | {"chosen_on": "validation rows"}
            if ref != baseline:
                scores[ref]["versus"] = versus(y, probability, baseline, probabilities[baseline], p.level)
            for metric in METRICS:
                if scores[ref][metric] is not None:
                    ctx.metric(f"{ref}.{metric}", scores[ref][metric], party=party)
        if p.keep_predictions:
            import polars as pl

            store.put_table(p.keep_predictions, test.with_columns(pl.Series(c, probabilities[ref]) for c, ref in zip(p.prediction_columns(), p.models)))
        if p.pooled:  # kept at the site: only its masked form leaves, in across_sites
            store.put(POOLED_SUMMARY, {ref: self._layout().site_summary(y, probability, thresholds[ref]) for ref, probability in probabilities.items()})
        return scores

    def _thresholds(self, frame: Any, where: TableRef, models: dict[str, RowScorer]) -> dict[str, float]:
        """Each model's threshold: the declared one, or the rule's choice on this site's validation rows."""
        rule = self.params.threshold_rule
        if rule is None:
            return dict.fromkeys(models, self.params.threshold)
        rows = validation_part(frame, where)
        y = label_vector(rows, self.params.label, where)
        chosen = {ref: rule.choose(y, model.predict_rows(rows, where)) for ref, model in models.items()}
        undefined = [ref for ref, threshold in chosen.items() if threshold is None]
        if undefined:
            raise FeatureError(
                f"{where}: the validation rows hold a single class, so threshold rule {rule.rule} cannot choose a threshold for "
                f"{', '.join(undefined)}; raise split's validation_fraction or give a fixed threshold"
            )
        return {ref: float(threshold) for ref, threshold in chosen.items() if threshold is not None}

    def across_sites(self, ctx: StepContext) -> None:
        """The pooled test: each site's counts per model, summed by masking; the coordinator scores the totals."""
        import numpy as np

        from workbench.crypto.masked_sum import masked_total
        from workbench.report.scores import POOLED_TEST

        p = self.params
        if not p.pooled:
            return
        layout = self._layout()
        summaries = {party: ctx.store(party).get(POOLED_SUMMARY) for party in ctx.parties}
        vectors = {party: np.concatenate([kept[ref] for ref in p.models]) for party, kept in summaries.items()}
        total = masked_total(ctx, vectors, "pooled-test")
        ctx.results[POOLED_TEST] = {ref: layout.scores(total[i * layout.size : (i + 1) * layout.size], p.level) for i, ref in enumerate(p.models)}
        for party in ctx.parties:
            ctx.store(party).put(POOLED_SUMMARY, None)

    def _layout(self) -> PooledLayout:
        from workbench.models.pooled_scores import PooledLayout

        return PooledLayout(self.params.auc_bins, self.params.calibration_bins)

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        from workbench.report.scores import key_metrics, sites_of

        means = ", ".join(f"{label.removeprefix('AUC ')} {value:.3f}" for label, value in key_metrics({"steps": {"this": results}}))
        sites = len(sites_of(results))
        return f"mean AUC over {sites} sites: {means}" if means else f"scored at {sites} sites; AUC undefined"

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        from workbench.report.evaluation import calibration_table, gain_table, pooled_table, score_table
        from workbench.report.scores import SiteScores, sites_of

        sites = sites_of(results)
        models = list(results[sites[0]]) if sites else []
        blocks: list[Block] = [
            score_table(results),
            Figure("AUC per site", auc_intervals(SiteScores(cls.kind, {site: results[site] for site in sites}))),
            calibration_table(results),
        ]
        if len(models) > 1:
            blocks.append(gain_table(results))
        pooled = pooled_table(results)
        return blocks if pooled is None else [*blocks, pooled]


def _model_at(ctx: StepContext, ref: str, party: str) -> RowScorer:
    """The model `ref` names, as `party` holds it: its own, or another site's received through the ledger."""
    from workbench.models.model import Model, model_bytes, model_from_bytes

    name, owner = split_model_ref(ref)
    if owner is None or owner == party:
        own: RowScorer = ctx.store(party).get(model_key(name))
        return own
    sent = ctx.store(owner).get(model_key(name))
    if not isinstance(sent, Model):
        raise FeatureError(f"model {ref!r}: {owner}'s {name} is a vertical model, which needs the vendor's block to score anyone; it cannot be sent")
    received = ctx.send(owner, party, MODEL_MESSAGE, model_bytes(sent), Protection.NONE)
    return model_from_bytes(received, sent.features, sent.spec)
