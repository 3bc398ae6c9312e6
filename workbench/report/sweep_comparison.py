"""One comparison of a sweep's runs: held-out utility and measured leakage against the swept value.

A researcher who runs one recipe at several values of one parameter (a DP epsilon, an l2, a number of rounds) wants
one table and two figures: what each value did to the held-out AUC at each site, and where it sits between utility
and what an attacker achieves. Everything comes from each run's published metrics, found by shape (`report.scores`),
so any step that scores models or audits them shows up without this module naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.privacy.dp_params import is_client_level, largest_epsilon
from workbench.report.blocks import Block, Figure, Table
from workbench.report.scores import AttackFigure, site_scores, strongest_attacks

FPR = 0.01
"""The false-positive rate at which the attack's TPR is compared: 1 %, the figure the audit's table reports too."""


@dataclass(frozen=True)
class VariantMetrics:
    """What the comparison reads of one variant: its label and value, and its metrics when it finished."""

    label: str
    value: Any
    value_text: str
    metrics: Mapping[str, Any] | None
    models_by_step: Mapping[str, str] = field(default_factory=dict)
    """The model each training step saved (from its contract), to put a step's published DP epsilon beside that model."""
    status: str = "finished"
    error: str | None = None
    run_dir: str | None = None
    """The variant's run directory in the sweep's folder; None when it was refused before its run began."""


def comparison_rows(variants: Sequence[VariantMetrics]) -> list[dict[str, Any]]:
    """One row per finished variant, site and model: AUC from the last scoring step that scored it, the strongest attack's
    TPR at 1 % FPR with its interval, and the DP epsilon a step published for it (the key only when one was published)."""
    rows: list[dict[str, Any]] = []
    for variant in variants:
        if variant.metrics is None:
            continue
        auc: dict[tuple[str, str], float | None] = {}
        for found in site_scores(variant.metrics):
            auc |= {(site, model): scores.get("auc") for site, models in found.scores.items() for model, scores in models.items()}
        attacks = strongest_attacks(variant.metrics, FPR)
        epsilons = _dp_epsilons(variant.metrics, variant.models_by_step)
        pairs = dict.fromkeys([*auc, *((site, model) for site, models in attacks.items() for model in models)])
        for site, model in pairs:
            attack: AttackFigure | None = attacks.get(site, {}).get(model)
            epsilon = epsilons.get((site, model), epsilons.get((None, model)))
            rows.append(
                {
                    "variant": variant.label,
                    "value": variant.value,
                    "site": site,
                    "model": model,
                    "auc": auc.get((site, model)),
                    "attack_tpr_at_1pct_fpr": None if attack is None else attack.value,
                    "attack_interval": None if attack is None else list(attack.interval),
                    "attack": None if attack is None else attack.attack,
                }
                | ({} if epsilon is None else {"dp_epsilon": epsilon})
            )
    return rows


def _dp_epsilons(metrics: Mapping[str, Any], models_by_step: Mapping[str, str]) -> dict[tuple[str | None, str], float]:
    """`(site, model)` -> epsilon, from every step that published `dp`: a site's own `dp: {epsilon: ...}` (local_train),
    or, at the aggregator, `dp: {site: {epsilon: ...}}` for every training site (fl_train at sample level, whose sites
    keep their own accountants and state what they spent with their updates); `(None, model)` too when all sites spent
    the same, and only that for fl_train at client level (`dp: {level: client, epsilon: ...}`), one account for every site."""
    found: dict[tuple[str | None, str], float] = {}
    for step, results in metrics.get("steps", {}).items():
        if not isinstance(results, Mapping):
            continue
        model = models_by_step.get(step, step)
        published: dict[str, float] = {}
        for party, summary in results.items():
            dp = summary.get("dp") if isinstance(summary, Mapping) else None
            if not isinstance(dp, Mapping):
                continue
            if is_client_level(dp):
                if (epsilon := largest_epsilon(dp)) is not None:
                    found[(None, model)] = epsilon
                continue
            per_site = dp if "epsilon" not in dp else {party: dp}
            for site, spent in per_site.items():
                epsilon = spent.get("epsilon") if isinstance(spent, Mapping) else None
                if isinstance(epsilon, int | float) and not isinstance(epsilon, bool):
                    published[site] = float(epsilon)
        found |= {(site, model): epsilon for site, epsilon in published.items()}
        if len(set(published.values())) == 1:
            found[(None, model)] = next(iter(published.values()))
    return found


def sweep_blocks(path: str, variants: Sequence[VariantMetrics], rows: list[dict[str, Any]]) -> list[Block]:
    """The variants (status, error), the comparison table, and utility against the swept value and against leakage."""
    from workbench.report.figures import xy_chart

    blocks: list[Block] = [
        Table(
            f"Variants of {path}",
            ["variant", "value", "status", "run directory", "error"],
            [[v.label, v.value_text, v.status, v.run_dir or "", v.error or ""] for v in variants],
            note="A failed variant left the others running; its run directory (if it got one) holds its events and error.",
        )
    ]
    if not rows:
        return blocks
    with_epsilon = any("dp_epsilon" in row for row in rows)
    blocks.append(
        Table(
            "Held-out utility and measured leakage per variant, site and model",
            ["variant", "site", "model", "AUC", "attack TPR@1%FPR", "interval", "attack", *(["DP ε"] if with_epsilon else [])],
            [
                [
                    row["variant"],
                    row["site"],
                    row["model"],
                    row["auc"],
                    row["attack_tpr_at_1pct_fpr"],
                    "" if row["attack_interval"] is None else f"[{row['attack_interval'][0]:.3f}, {row['attack_interval'][1]:.3f}]",
                    row["attack"] or "",
                    *([row.get("dp_epsilon")] if with_epsilon else []),
                ]
                for row in rows
            ],
            note="AUC on each site's held-out rows (the scoring step); attack TPR at 1 % FPR of the strongest membership-inference "
            "attack on that model at that site (the audit step), a lower bound on leakage, with its bootstrap interval.",
        )
    )
    finished = [v for v in variants if v.metrics is not None]
    series = list(dict.fromkeys(f"{row['site']} · {row['model']}" for row in rows))
    at = {(row["variant"], f"{row['site']} · {row['model']}"): row for row in rows}

    def points(name: str, x: Mapping[str, float | None], metric: str) -> list[tuple[float | None, float | None]]:
        return [(x[v.label], at[(v.label, name)][metric] if (v.label, name) in at else None) for v in finished]

    numeric = all(isinstance(v.value, int | float) and not isinstance(v.value, bool) for v in finished)
    position = {v.label: float(v.value) if numeric else float(i) for i, v in enumerate(finished)}
    spread = [float(v.value) for v in finished] if numeric else []
    log_x = bool(spread) and min(spread) > 0 and max(spread) / min(spread) >= 100
    ticks = None if numeric else [(float(i), v.value_text) for i, v in enumerate(finished)]
    field_name = path.rsplit(".", 1)[-1]
    if any(row["auc"] is not None for row in rows):
        chart = xy_chart({name: points(name, position, "auc") for name in series}, xlabel=field_name, ylabel="held-out AUC", xticks=ticks, log_x=log_x)
        blocks.append(Figure(f"Held-out AUC against {field_name}", chart, "one line per site and model"))
    if any(row["auc"] is not None and row["attack_tpr_at_1pct_fpr"] is not None for row in rows):
        by_series = {name: [_leakage_point(at.get((v.label, name))) for v in finished] for name in series}
        labels = [v.value_text for v in finished]
        chart = xy_chart(by_series, xlabel="attack TPR at 1 % FPR (strongest attack)", ylabel="held-out AUC", point_labels=labels)
        blocks.append(Figure("Utility against measured leakage", chart, f"each point a variant, labelled with its {field_name}; up and to the left is better"))
    return blocks


def _leakage_point(row: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    """(attack TPR at 1 % FPR, AUC) of a variant's row; a gap where the variant has no such site and model."""
    return (None, None) if row is None else (row["attack_tpr_at_1pct_fpr"], row["auc"])
