"""Membership inference against every model a recipe releases, run at the site that holds the rows; only scores travel.

The question a privacy officer asks of a released model is how well someone holding it can tell whether a given
patient was in its training data. The audit answers with two attacks at each site, on the site's own rows:

- LOSS (Yeom et al. 2018): a record the model fits unusually well is called a member;
- RMIA, offline (Zarifzadeh et al. 2024): the model's fit to the record against reference models the attacker
  trained without it, compared with the same ratio on population records.

Members are the site's training rows. The attacker is anyone who holds the released model and population data from
the same distribution; the audit gives it `population_share` of the site's held-out rows (half to train its
reference models, half as the population its scores are compared against), and the other held-out rows are the
non-members. Figures follow Carlini et al. 2022: attack AUC, TPR at FPR 0.1 % and 1 %, and the advantage
max |TPR − FPR|, each with a stratified bootstrap interval. They bound leakage from below: a weak attack is no proof
of privacy, and the intervals cover the choice of audited rows, not a retraining of the model.

For a model fl_train trained, the audit also asks what the aggregator could reconstruct of the site's training rows from
what it read of the first round (`workbench.privacy.update_leakage`): the site replays its round-1 update with the
ClientApp's own training code (`workbench.fl.replay`) and runs the aggregator's attacks on its update where updates
travel in the clear, on the average where only that is decrypted, and on nothing where the aggregator holds only
ciphertexts. Only the counts of recovered rows are published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from workbench.context import StepContext
from workbench.contracts import Contract, Randomness, RoleNeed
from workbench.data.splits import split_part, stratified_mask
from workbench.fl.plan import training_key
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.parties import Role
from workbench.report.blocks import Block, Figure, Table, Text
from workbench.steps.base import ScoringParams, SiteStep, register

if TYPE_CHECKING:  # numpy and the attacks load when the step runs, not when a recipe is validated
    import numpy as np
    import polars as pl

    from workbench.fl.plan import FederatedTraining
    from workbench.models.model import Model

ATTACKS = {"loss": "LOSS", "rmia": "RMIA (offline)"}
UPDATE_LEAKAGE = "update_leakage"
"""A federated model's entry for what the aggregator reconstructed from the first round (workbench.privacy.update_leakage)."""
FPRS = (0.001, 0.01)


class AuditParams(ScoringParams):
    models: list[str] = Field(min_length=1, description="Models to attack, by name: every model the recipe releases.")
    reference_models: int = Field(4, ge=1, le=64, description="Reference models the RMIA attacker trains on its population data.")
    population_share: float = Field(
        0.5, gt=0.0, lt=1.0, description="Share of each site's held-out rows given to the attacker as population data; the rest are the non-members."
    )
    resamples: int = Field(200, ge=20, le=10_000, description="Bootstrap resamples for the confidence intervals.")
    level: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of the intervals.")
    update_tolerance: float = Field(
        0.01,
        gt=0.0,
        le=1.0,
        description="Federated models: a training record counts as reconstructed from the first round's update when a reconstruction "
        "has its label and every feature within this many pooled standard deviations.",
    )


@register
class Audit(SiteStep[AuditParams]):
    """Membership inference (LOSS and offline RMIA) against each named model, at each site, on the site's own rows."""

    kind = "audit"
    Params = AuditParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        p = self.params
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL),),
            reads=p.reads(),
            reads_models=tuple(p.models),
            randomness=Randomness.SEED,
        )

    def run_at(self, ctx: StepContext, party: str) -> dict[str, Any]:
        import polars as pl

        p, store = self.params, ctx.store(party)
        where = TableRef(party, p.table)
        frame = store.table(p.table)
        members, held_out = split_part(frame, where, test=False), split_part(frame, where, test=True)
        rng = ctx.rng("audit", party)
        y_held_out = label_vector(held_out, p.label, where)
        given = stratified_mask(y_held_out, p.population_share, rng)
        population = held_out.filter(pl.Series(given))
        reference_rows = stratified_mask(label_vector(population, p.label, where), 0.5, rng)
        rows = {
            "members": members,
            "nonmembers": held_out.filter(pl.Series(~given)),
            "reference": population.filter(pl.Series(reference_rows)),
            "population": population.filter(pl.Series(~reference_rows)),
        }
        y_reference = label_vector(rows["reference"], p.label, where)
        halves = [stratified_mask(y_reference, 0.5, rng) for _ in range(p.reference_models)]
        # The same reference halves and bootstrap resamples for every model (common random numbers): models that are
        # equal (plain and CKKS aggregation, to 1e-6) get equal figures, and differences between models are theirs.
        results = {name: self._attack(store.get(model_key(name)), rows, halves, where, ctx.rng("audit", party, "bootstrap")) for name in p.models}
        for name in p.models:  # models that fl_train trained: what the aggregator could reconstruct of the site's rows
            if store.has(training_key(name)):
                results[name][UPDATE_LEAKAGE] = self._update_leakage(store.get(training_key(name)), store.get(model_key(name)), members, party)
        return results

    def _update_leakage(self, training: FederatedTraining, model: Model, members: pl.DataFrame, party: str) -> dict[str, Any]:
        """The aggregator's attacks on what it read of round 1, scored against the site's training rows, at the site."""
        from workbench.fl.replay import first_round
        from workbench.privacy.update_leakage import attack_update

        plan, where = training.plan, TableRef(party, self.params.table)
        X, y = design_matrix(members, plan.features, where), label_vector(members, plan.label, where)
        seen = first_round(training, model.standardizer, X, y, party)
        figures: dict[str, Any] = {"read": seen.sight.value, "records": len(y), "tolerance": self.params.update_tolerance}
        if seen.view is None:
            return {**figures, "attacked": False, "reason": seen.reason, "recovered": 0, "share": 0.0}
        leakage = attack_update(seen.view, model.standardizer.apply(X), y, self.params.update_tolerance)
        attacked = {"attacked": True, "local_steps": seen.view.steps, "by_attack": leakage.by_attack}
        return {**figures, **attacked, "recovered": leakage.recovered, "share": leakage.share}

    def _attack(self, model: Model, rows: dict[str, pl.DataFrame], halves: list[np.ndarray], where: TableRef, rng: np.random.Generator) -> dict[str, Any]:
        """Both attacks on one model: their figures, intervals and a thinned ROC, for members against non-members."""
        import numpy as np

        from workbench.models.model import fit_model
        from workbench.privacy import membership as mi

        p = self.params
        X = {part: design_matrix(frame, model.features, where) for part, frame in rows.items()}
        y = {part: label_vector(frame, p.label, where) for part, frame in rows.items()}
        target = {part: model.predict_proba(X[part]) for part in rows}
        references = [fit_model(X["reference"][half], y["reference"][half], model.features, model.spec, rng) for half in halves]
        reference = {part: np.stack([r.predict_proba(X[part]) for r in references]) for part in ("members", "nonmembers", "population")}

        def rmia(part: str) -> np.ndarray:
            return mi.rmia_scores(target[part], reference[part], y[part], target["population"], reference["population"], y["population"])

        scores = {
            "loss": {part: mi.loss_scores(target[part], y[part]) for part in ("members", "nonmembers")},
            "rmia": {part: rmia(part) for part in ("members", "nonmembers")},
        }
        out: dict[str, Any] = {}
        for attack, by_part in scores.items():
            metrics = mi.attack_metrics(by_part["members"], by_part["nonmembers"], FPRS)
            intervals = mi.bootstrap_intervals(by_part["members"], by_part["nonmembers"], rng, p.resamples, p.level, FPRS)
            fpr, tpr = mi.log_roc_points(*mi.roc_curve(by_part["members"], by_part["nonmembers"]))
            out[attack] = {
                **{name: {"value": value, "interval": list(intervals[name])} for name, value in metrics.values().items()},
                "members": metrics.members,
                "nonmembers": metrics.nonmembers,
                "roc": {"fpr": [round(float(v), 6) for v in fpr], "tpr": [round(float(v), 6) for v in tpr]},
            }
        out["attacker"] = {"population_rows": len(rows["population"]), "reference_rows": len(rows["reference"]), "reference_models": p.reference_models}
        return out

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        found = [(site, model, attack, r[attack]) for site, models in results.items() for model, r in models.items() for attack in ATTACKS]
        if not found:
            return ""
        site, model, attack, worst = max(found, key=lambda f: f[3]["auc"]["value"])
        low, high = worst["auc"]["interval"]
        return f"highest attack AUC {worst['auc']['value']:.3f} [{low:.3f}, {high:.3f}]: {ATTACKS[attack]} on {model} at {site}"

    @classmethod
    def verdicts(cls, results: dict[str, Any]) -> list[str]:
        """One line a site: its strongest attack by AUC, with the interval, whether that beats guessing, and how many
        non-members it had (which sets how fine TPR at a low FPR can be)."""
        lines = []
        for site, models in results.items():
            model, attack, figures = max(((m, a, r[a]) for m, r in models.items() for a in ATTACKS), key=lambda f: f[2]["auc"]["value"])
            low, high = figures["auc"]["interval"]
            verdict = "better than guessing" if low > 0.5 else "no better than guessing"
            lines.append(
                f"{site}: highest attack AUC {figures['auc']['value']:.3f} [{low:.3f}, {high:.3f}] ({ATTACKS[attack]} on {model}), "
                f"{verdict}; {figures['nonmembers']} non-members"
            )
        return lines

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        from workbench.report.figures import roc_chart

        def cell(figures: dict[str, Any], name: str) -> str:
            low, high = figures[name]["interval"]
            return f"{figures[name]['value']:.3f} [{low:.3f}, {high:.3f}]"

        figures = ("auc", _tpr(0.001), _tpr(0.01), "advantage")
        rows = [
            [site, model, ATTACKS[attack], *(cell(r[attack], name) for name in figures), r[attack]["members"], r[attack]["nonmembers"]]
            for site, models in results.items()
            for model, r in models.items()
            for attack in ATTACKS
        ]
        attacker: dict[str, Any] = next((r["attacker"] for models in results.values() for r in models.values()), {})
        blocks: list[Block] = [
            Text(
                "Who attacks, with what",
                [
                    "Members are each site's training rows; non-members its held-out rows that the attacker was not given. The attacker "
                    "holds the released model and population data from the same distribution: a share of the site's held-out rows "
                    f"(here {attacker.get('reference_rows', 0)} to train {attacker.get('reference_models', 0)} reference models and "
                    f"{attacker.get('population_rows', 0)} as population, at the first site). The attacks ran at each site on its own "
                    "rows; only these figures left it.",
                    "These are lower bounds on leakage: a stronger attack may do better, and a weak result is no proof of privacy. "
                    "Intervals are bootstrap intervals over the audited rows, not over retraining the model. TPR at FPR 0.1 % is set "
                    "by a single record when a site has fewer than 1,000 non-members (at 1 %, fewer than 100).",
                ],
            ),
            Text("At a glance", cls.verdicts(results)),
            Table(
                "Membership inference per site and model: estimate [interval]",
                ["site", "model", "attack", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "advantage", "members", "non-members"],
                rows,
                note="AUC 0.5, TPR equal to the FPR and advantage 0 are what guessing achieves.",
            ),
        ]
        blocks.extend(_update_leakage_blocks(results))
        for site, models in results.items():
            curves = {f"{model} ({ATTACKS[attack]})": (r[attack]["roc"]["fpr"], r[attack]["roc"]["tpr"]) for model, r in models.items() for attack in ("rmia",)}
            blocks.append(Figure(f"RMIA ROC at {site}, log scale", roc_chart(curves)))
        return blocks


def _tpr(fpr: float) -> str:
    from workbench.privacy.membership import tpr_name

    return tpr_name(fpr)


def _update_leakage_blocks(results: dict[str, Any]) -> list[Block]:
    """What the aggregator could reconstruct of each site's training rows from round 1, for each federated model."""
    found = [(site, model, r[UPDATE_LEAKAGE]) for site, models in results.items() for model, r in models.items() if UPDATE_LEAKAGE in r]
    if not found:
        return []
    tolerance = found[0][2]["tolerance"]

    def attacked(leak: dict[str, Any]) -> str:
        if not leak["attacked"]:
            return f"nothing: {leak['reason']}"
        return ", ".join(f"{name} {count}" for name, count in leak["by_attack"].items()) + f" ({leak['local_steps']} local step(s))"

    rows = [[site, model, leak["read"], leak["records"], leak["recovered"], f"{leak['share']:.3f}", attacked(leak)] for site, model, leak in found]
    return [
        Text(
            "Update leakage: what the aggregator reconstructs from the first round",
            [
                "The attacker is the aggregator, honest but curious: it knows the plan, the global model it sent and what it read "
                "back, so for one local step it reads the gradient, and a logistic (or first-layer) gradient is a weighted sum of "
                "the records behind it. Its attacks: the ratio of weight to bias gradient (the record itself when one record is "
                "behind the update) and, from a zero-weight start, the mean record of each class (a class with one record at the "
                "site gives it away). Each site replayed its own round-1 update with the training code and ran the attacks on "
                "what the aggregator read of it: its update where updates travel in the clear, the average of all sites' updates "
                "where only that is decrypted, nothing where it holds only ciphertexts. Only the counts left the site.",
                f"A training record counts as recovered when a reconstruction has its label and every standardized feature within "
                f"{tolerance:g} pooled standard deviations. These are lower bounds: optimisation attacks on small batches, or on "
                "many rounds, may recover more.",
            ],
        ),
        Table(
            "Training records the aggregator recovered from round 1",
            ["site", "model", "the aggregator read", "records", "recovered", "share", "recovered by attack"],
            rows,
        ),
    ]
