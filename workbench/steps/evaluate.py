"""Score models on each site's held-out rows, at the site; only the scores reach the coordinator."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workbench.context import StepContext
from workbench.contracts import Contract, RoleNeed
from workbench.data.splits import split_part
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.models.metrics import binary_metrics
from workbench.parties import Role
from workbench.report.blocks import Block, Figure, Table
from workbench.report.figures import grouped_bars
from workbench.steps.base import ScoringParams, SiteStep, register

METRICS = ("auc", "accuracy", "brier")


class EvaluateParams(ScoringParams):
    models: list[str] = Field(default_factory=lambda: ["local"], min_length=1, description="Models to score, by name.")


@register
class Evaluate(SiteStep[EvaluateParams]):
    """Per-site AUC, accuracy and Brier score of each named model on the same held-out rows."""

    kind = "evaluate"
    Params = EvaluateParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        p = self.params
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL),),
            reads=p.reads(),
            reads_models=tuple(p.models),
        )

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        p, store = self.params, ctx.store(party)
        where = TableRef(party, p.table)
        test = split_part(store.table(p.table), where, test=True)
        y = label_vector(test, p.label, where)
        scores: dict[str, Any] = {}
        for name in p.models:
            model = store.get(model_key(name))
            scores[name] = binary_metrics(y, model.predict_proba(design_matrix(test, model.features, where)))
            for metric in METRICS:
                if scores[name][metric] is not None:
                    ctx.metric(f"{name}.{metric}", scores[name][metric], party=party)
        return scores

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        from workbench.report.scores import key_metrics

        means = ", ".join(f"{label.removeprefix('AUC ')} {value:.3f}" for label, value in key_metrics({"steps": {"this": results}}))
        return f"mean AUC over {len(results)} sites: {means}" if means else f"scored at {len(results)} sites; AUC undefined"

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        sites = list(results)
        models = list(next(iter(results.values()), {}))
        rows = [[site, model, s["n"], s["positives"], *(s[m] for m in METRICS)] for site in sites for model, s in results[site].items()]
        auc = {model: [results[site][model]["auc"] for site in sites] for model in models}
        blocks: list[Block] = [
            Table(
                "Held-out performance per site",
                ["site", "model", "n", "positives", *METRICS],
                rows,
                note="AUC is empty where a site's held-out rows hold a single class.",
            ),
            Figure("AUC per site", grouped_bars(sites, auc, ylabel="AUC", ylim=(0.5, 1.0))),
        ]
        if len(models) > 1:
            blocks.append(gain_table(results, sites, models))
        return blocks


def gain_table(results: dict[str, Any], sites: list[str], models: list[str]) -> Table:
    """AUC of every model against the local-only baseline (or the first model), smallest site first."""
    baseline = "local" if "local" in models else models[0]
    others = [model for model in models if model != baseline]
    models = [baseline, *others]
    by_size = sorted(sites, key=lambda site: results[site][baseline]["n"])

    def gain(site: str, model: str) -> float | None:
        a, b = results[site][model]["auc"], results[site][baseline]["auc"]
        return None if a is None or b is None else a - b

    rows = [[site, results[site][baseline]["n"], *(results[site][m]["auc"] for m in models), *(gain(site, m) for m in others)] for site in by_size]
    return Table(f"AUC gain over {baseline}, smallest site first", ["site", "held-out n", *models, *(f"{m} − {baseline}" for m in others)], rows)
