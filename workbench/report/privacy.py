"""How a DP step's privacy spent reads in the report: one table per step, a row per site, and what it covers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.report.blocks import Table

COVERS = (
    "Each site's (epsilon, delta) covers its training rows, against anyone who sees the released model or every update "
    "the site sent (the aggregator included), for adding or removing one row. It does not cover: the standardization "
    "moments (sent exact), the held-out rows that evaluation scores, hyperparameters tuned on the same rows, rows that "
    "repeat a patient, or repeated runs on the same rows (each spends again)."
)


def dp_block(spent: Mapping[str, Mapping[str, Any]]) -> Table:
    """The privacy each site spent, with every figure needed to recompute it (sigma, C, q, steps, delta, accountant)."""
    accountants = sorted({str(figures.get("accountant", "?")) for figures in spent.values()})
    return Table(
        "Differential privacy spent, per site",
        ["site", "epsilon", "delta", "noise multiplier σ", "clip C", "sample rate q", "steps"],
        [[site, f["epsilon"], f["delta"], f["noise_multiplier"], f["clip"], f["sample_rate"], f["steps"]] for site, f in sorted(spent.items())],
        note=f"DP-SGD with Poisson sampling; accountant {', '.join(accountants)}. {COVERS}",
    )
