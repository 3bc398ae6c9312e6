"""Per-site model scores found in a run's metrics, whichever step produced them.

A step that scores models publishes, per site, a mapping from model name
(local, federated, pooled, ...) to metrics with an `auc`. This module finds
such results by their shape rather than by step kind, so the results view,
the runs list and the tutorials keep working as new scoring steps appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import mean
from typing import Any

POOLED_TEST = "all sites (pooled test)"
"""The key of pooled-test scores among a scoring step's sites: no party can have this name (party names have no spaces)."""


def sites_of(results: Mapping[str, Any]) -> list[str]:
    """The sites of a scoring step's results, without the pooled-test entry."""
    return [site for site in results if site != POOLED_TEST]


@dataclass(frozen=True)
class SiteScores:
    """One scoring step's results: `scores[site][model][metric]`."""

    step: str
    scores: dict[str, dict[str, dict[str, Any]]]
    """Besides the figures (`auc`, `brier`, ...), what a scoring step adds: intervals (`auc_ci`), a paired comparison (`versus`)."""

    @property
    def sites(self) -> list[str]:
        return sites_of(self.scores)

    @property
    def pooled(self) -> dict[str, dict[str, Any]] | None:
        """Scores on every site's held-out rows together (evaluate's `pooled: true`), if the step computed them."""
        return self.scores.get(POOLED_TEST)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(model for per_site in self.scores.values() for model in per_site))

    def metric(self, name: str) -> dict[str, list[float | None]]:
        """`{model: [value at each site]}` for one metric, None where a site lacks it."""
        return {model: [self.scores[site].get(model, {}).get(name) for site in self.sites] for model in self.models}

    def mean(self, model: str, name: str = "auc") -> float | None:
        values = [v for v in self.metric(name)[model] if v is not None]
        return mean(values) if values else None


def site_scores(metrics: Mapping[str, Any]) -> list[SiteScores]:
    """Every step in `metrics["steps"]` whose results look like site -> model -> {auc: ...}."""
    found = []
    for step, results in metrics.get("steps", {}).items():
        if _is_site_scores(results):
            found.append(SiteScores(step, {site: dict(models) for site, models in results.items()}))
    return found


def key_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Mean AUC over sites per model of the last scoring step: the figures a runs list shows (labelled "AUC MODEL")."""
    scored = site_scores(metrics)
    if not scored:
        return []
    last = scored[-1]
    pairs = [(f"AUC {model}", last.mean(model)) for model in last.models]
    return [(label, value) for label, value in pairs if value is not None]


@dataclass(frozen=True)
class AttackFigure:
    """One attack's estimate of a figure (e.g. TPR at 1 % FPR) against one model at one site, with its interval."""

    attack: str
    value: float
    interval: tuple[float, float]


def strongest_attacks(metrics: Mapping[str, Any], fpr: float = 0.01) -> dict[str, dict[str, AttackFigure]]:
    """`[site][model]`: the attack with the highest TPR at `fpr`, over every step whose results look like a membership
    audit's, site -> model -> {attack: {tpr_at_fpr_F: {value, interval}}} (found by shape, as `site_scores` finds scores).

    The strongest attack is the one that matters: the audit's figures bound leakage from below.
    """
    from workbench.privacy.membership import tpr_name  # numpy comes with it; a runs list without audits need not load it

    figure = tpr_name(fpr)
    found: dict[str, dict[str, AttackFigure]] = {}
    for results in metrics.get("steps", {}).values():
        if not isinstance(results, Mapping):
            continue
        for site, models in results.items():
            for model, attacks in models.items() if isinstance(models, Mapping) else ():
                for attack, figures in attacks.items() if isinstance(attacks, Mapping) else ():
                    estimate = figures.get(figure) if isinstance(figures, Mapping) else None
                    if not (isinstance(estimate, Mapping) and isinstance(estimate.get("value"), int | float) and len(estimate.get("interval") or ()) == 2):
                        continue
                    best = found.setdefault(site, {}).get(model)
                    if best is None or estimate["value"] > best.value:
                        low, high = estimate["interval"]
                        found[site][model] = AttackFigure(attack, float(estimate["value"]), (float(low), float(high)))
    return found


def _is_site_scores(results: Any) -> bool:
    if not isinstance(results, Mapping) or not results:
        return False
    return all(isinstance(models, Mapping) and models and all(isinstance(m, Mapping) and "auc" in m for m in models.values()) for models in results.values())
