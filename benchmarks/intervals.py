"""How often evaluate's AUC intervals cover the true AUC, logit-scale DeLong against the plain Wald interval.

    python benchmarks/intervals.py [--replicates 2000] [--smoke]

Binormal scores (positives N(d, 1), negatives N(0, 1), true AUC Φ(d/√2)) at held-out sizes like the flagship's and
the UCI sites'; each replicate draws new rows and computes both 95 % intervals from DeLong's variance. A statistic,
not a speed: it belongs here because it is a figure the docs quote (docs/evaluation.md), measured on demand.
"""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import norm

from workbench.models.uncertainty import auc_interval, delong_covariance, z_value

SETTINGS = ((30, 90, 0.75), (10, 110, 0.85), (6, 114, 0.75), (6, 114, 0.90), (3, 60, 0.80))
"""(positives, negatives, true AUC): a site with 30 positives, then ever fewer, as the trauma centre's 6."""


def coverage(positives: int, negatives: int, auc: float, replicates: int, rng: np.random.Generator) -> tuple[float, float]:
    d = np.sqrt(2) * norm.ppf(auc)
    y = np.r_[np.ones(positives), np.zeros(negatives)]
    logit = wald = 0
    for _ in range(replicates):
        score = np.r_[rng.normal(d, 1, positives), rng.normal(0, 1, negatives)]
        interval = auc_interval(y, score, 0.95)
        logit += interval is not None and interval[0] <= auc <= interval[1]
        aucs, covariance = delong_covariance(y, score)
        half = z_value(0.95) * np.sqrt(covariance[0, 0])
        wald += aucs[0] - half <= auc <= aucs[0] + half
    return logit / replicates, wald / replicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="50 replicates: checks the benchmark runs; measures nothing")
    args = parser.parse_args()
    replicates = 50 if args.smoke else args.replicates
    rng = np.random.default_rng(1)
    table = Table(title=f"Coverage of 95 % AUC intervals over {replicates} replicates")
    for column in ("positives / negatives", "true AUC", "logit DeLong covers", "Wald DeLong covers"):
        table.add_column(column)
    for positives, negatives, auc in SETTINGS:
        logit, wald = coverage(positives, negatives, auc, replicates, rng)
        table.add_row(f"{positives} / {negatives}", f"{auc:.2f}", f"{logit:.1%}", f"{wald:.1%}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
