"""Steps of one technique family side by side (e.g. federated training, plain and encrypted): utility, cost and the
ledger against the unprotected one.

A recipe may train the same model several ways (plain updates, CKKS under
either key custody, ...); a reader wants one table that says what protecting
the updates changed. Everything comes from what the coordinator holds: the published
metrics, the manifest's timings and the ledger, never a party store.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from workbench.contracts import Contract
from workbench.data.link_columns import RECEIVED_ROWS
from workbench.ledger import Ledger, Protection
from workbench.parties import Role
from workbench.privacy.dp_params import largest_epsilon
from workbench.recipe import Recipe
from workbench.report.blocks import Block, Table, Text
from workbench.report.scores import site_scores


@dataclass(frozen=True)
class _Variant:
    """One step of the family, as the comparison needs it."""

    step: str
    aggregation: str
    title: str
    """The aggregation kind's name for itself in prose."""
    protected: bool
    """Whether the kind protects updates at all; the first unprotected step is the one the others are compared with."""
    custody: str
    model: str
    seconds: float
    messages: int
    nbytes: int
    by_protection: Counter[str]
    expansion: float | None
    dp_epsilon: float | None
    """The largest epsilon a site spent, for a step trained by DP-SGD; the federation's, under client-level DP."""
    received_rows: int
    """Rows of another party's data the hospitals hold in the tables the step trains on (e.g. vitals a link sent)."""


def comparison_blocks(recipe: Recipe, metrics: dict[str, Any], manifest: dict[str, Any], ledger: Ledger) -> list[Block]:
    """Cost, ledger and utility of every fl_train step next to the first plain one; nothing when there is one step."""
    variants = _variants(recipe, metrics, manifest, ledger)
    if len(variants) < 2:
        return []
    plain = next((v for v in variants if not v.protected and v.dp_epsilon is None), variants[0])
    cost = Table(
        "Cost and ledger per federated training step",
        [
            "step",
            "aggregation",
            "custody",
            "DP epsilon (largest site)",
            "wall time (s)",
            f"× {plain.step}",
            "messages",
            "MB",
            f"bytes × {plain.step}",
            "messages by protection",
            "update expansion",
            "rows of others' data at hospitals",
        ],
        [
            [
                v.step,
                v.aggregation,
                v.custody,
                "—" if v.dp_epsilon is None else round(v.dp_epsilon, 3),
                round(v.seconds, 2),
                _ratio(v.seconds, plain.seconds),
                v.messages,
                round(v.nbytes / 1e6, 3),
                _ratio(v.nbytes, plain.nbytes),
                ", ".join(f"{protection} {count}" for protection, count in sorted(v.by_protection.items())),
                None if v.expansion is None else round(v.expansion, 1),
                v.received_rows,
            ]
            for v in variants
        ],
        note="Wall time of the whole step (statistics, every round, evaluation); bytes and messages from the ledger; "
        "update expansion: bytes of the update messages over the float32 bytes of the values they carry (a small model leaves most "
        "of a ciphertext's N/2 slots empty, so its expansion is far above that of a large one); rows of others' data: rows of "
        "another party's columns the hospitals received before the step, in the tables it trains on (a payload link's vitals), "
        "as the steps that sent them published.",
    )
    blocks: list[Block] = [Text("What encryption cost and changed", [_story(variants, plain)]), cost]
    utility = _utility(metrics, variants, plain)
    if utility is not None:
        blocks.append(utility)
    return blocks


def _variants(recipe: Recipe, metrics: dict[str, Any], manifest: dict[str, Any], ledger: Ledger) -> list[_Variant]:
    """The steps of the first technique family in the recipe that ran, as their contracts describe them."""
    timings = manifest.get("timings_seconds", {})
    contracts = recipe.contracts()
    order = [name for name, _ in contracts]
    declared = [(name, contract) for name, contract in contracts if contract.technique and contract.saves_models]
    family = next((c.technique.family for name, c in declared if c.technique and name in metrics.get("steps", {})), None)
    variants = []
    for name, contract in declared:
        technique = contract.technique
        if technique is None or technique.family != family or name not in metrics.get("steps", {}):
            continue
        summary: dict[str, Any] = next(iter(metrics["steps"][name].values()), {})
        messages = [m for m in ledger.messages if m.step == name]
        variants.append(
            _Variant(
                step=name,
                aggregation=technique.name,
                title=technique.title,
                protected=technique.protection is not Protection.NONE,
                custody=summary.get("custody", "—"),
                model=contract.saves_models[0],
                seconds=float(timings.get(name, 0.0)),
                messages=len(messages),
                nbytes=sum(m.nbytes for m in messages),
                by_protection=Counter(m.protection.value for m in messages),
                expansion=summary.get("ciphertext_expansion"),
                dp_epsilon=largest_epsilon(summary["dp"]) if summary.get("dp") else None,
                received_rows=_received_rows(order[: order.index(name)], contract, metrics),
            )
        )
    return variants


def _received_rows(earlier: list[str], contract: Contract, metrics: dict[str, Any]) -> int:
    """What the `earlier` steps published as received at the hospitals, in the tables this step reads there."""
    tables = {columns.table for columns in contract.reads if columns.role is Role.HOSPITAL}
    results = metrics.get("steps", {})
    return sum(
        int(summary[RECEIVED_ROWS]["rows"])
        for name in earlier
        for summary in results.get(name, {}).values()
        if isinstance(summary, dict) and summary.get(RECEIVED_ROWS, {}).get("table") in tables
    )


def _utility(metrics: dict[str, Any], variants: list[_Variant], plain: _Variant) -> Table | None:
    """Held-out AUC per site of each variant's model, from the last step whose results score them all (found by their
    shape, site -> model -> {auc, ...}, as the results view finds them)."""
    scores = next((found.scores for found in reversed(site_scores(metrics)) if {v.model for v in variants} <= set(found.models)), None)
    if not scores:
        return None
    sites = list(scores)

    def auc(site: str, model: str) -> float | None:
        value = scores[site][model]["auc"]
        return None if value is None else float(value)

    def largest_change(v: _Variant, metric: str) -> str | None:
        pairs = [(scores[s][v.model][metric], scores[s][plain.model][metric]) for s in sites]
        changes = [abs(a - b) for a, b in pairs if a is not None and b is not None]
        return f"{max(changes):.1e}" if changes else None

    return Table(
        "Held-out utility per federated training step",
        ["step", "model", *(f"AUC {site}" for site in sites), f"largest |ΔAUC| vs {plain.step}", f"largest |ΔBrier| vs {plain.step}"],
        [[v.step, v.model, *(auc(site, v.model) for site in sites), largest_change(v, "auc"), largest_change(v, "brier")] for v in variants],
        note="Scored by each site on its own held-out rows (the evaluate step). Encryption changes a model by CKKS noise only "
        "(tiny differences, hence scientific notation); DP-SGD changes it by the noise that buys its epsilon.",
    )


def _story(variants: list[_Variant], plain: _Variant) -> str:
    protected = [v for v in variants if v.protected]
    if not protected or plain.protected:
        return f"{len(variants)} federated training steps ran; ratios and differences are against {plain.step}."
    slowest = max(protected, key=lambda v: v.seconds)
    return (
        f"The same model was trained {len(variants)} ways. Against {plain.title} ({plain.step}), "
        f"{' and '.join(dict.fromkeys(v.title for v in protected))} took up to {_ratio(slowest.seconds, plain.seconds)}x the wall "
        f"time ({slowest.step}) and up to {_ratio(max(v.nbytes for v in protected), plain.nbytes)}x the bytes; the utility table "
        "shows what it changed in the model."
    )


def _ratio(value: float, reference: float) -> float | None:
    return round(value / reference, 2) if reference else None
