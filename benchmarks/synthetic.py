"""DP synthetic data (synthesize): generation time, fidelity and train-on-synthetic AUC at each epsilon, over noise draws.

    python benchmarks/synthetic.py [--repeats 5] [--rows 6000] [--columns 20] [--smoke]

Two parts. recipes/synthetic.yaml (the flagship's cohort: three hospitals, 4,200 training rows, 12 columns) run
`--repeats` times: each run draws fresh noise, so every figure is the median over runs, with its range. Per epsilon:
the synthesize step's wall time, the large hospital's train-on-synthetic AUC next to its train-on-real ones (local,
pooled) in the same run, the mean 1- and 2-way total-variation distance against its held-out rows, and the share of
synthetic rows closer to a training row than to a held-out one. Then the step alone at `--rows` rows and `--columns`
columns (three sites' tables from files, correlated categorical and numeric columns), against the 60 s target.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from rich.console import Console
from rich.table import Table
from smoke import small_cohort

from workbench.recipe import load_recipe, parse_recipe
from workbench.runner import run_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SITE = "general_hospital"
STEPS = {"4": "synthesize_eps4", "1": "synthesize_eps1", "∞": "synthesize_inf"}


def cohort_runs(repeats: int, smoke: bool) -> list[dict[str, Any]]:
    overrides = [*small_cohort(scale=0.1), "steps[fl_train].params.rounds=3"] if smoke else []
    recipe = load_recipe(RECIPES / "synthetic.yaml", overrides)
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            result = run_recipe(recipe, Path(folder) / "run", base_dir=RECIPES)
        runs.append({"metrics": result.metrics["steps"], "seconds": result.manifest["timings_seconds"]})
    return runs


def spread(values: list[float], digits: int = 3) -> str:
    median = statistics.median(values)
    return f"{median:.{digits}f}" if len(values) == 1 else f"{median:.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def print_cohort(runs: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"Synthetic cohort at {SITE}: median and range over {len(runs)} noise draws (recipes/synthetic.yaml)")
    for column in ("epsilon", "step s", "train-on-synthetic AUC", "local AUC", "pooled AUC", "synthetic − local", "1-way TV", "2-way TV", "closer to train"):
        table.add_column(column, justify="right")
    for epsilon, step in STEPS.items():
        auc = [run["metrics"]["evaluate"][SITE][step.replace("synthesize", "synthetic")]["auc"] for run in runs]
        local = [run["metrics"]["evaluate"][SITE]["local"]["auc"] for run in runs]
        pooled = [run["metrics"]["evaluate"][SITE]["pooled"]["auc"] for run in runs]
        site = [run["metrics"][step][SITE] for run in runs]
        table.add_row(
            epsilon,
            spread([run["seconds"][step] for run in runs], 2),
            spread(auc),
            spread(local),
            spread(pooled),
            spread([a - b for a, b in zip(auc, local)]),
            spread([figures["fidelity"]["tv_1way_mean"] for figures in site]),
            spread([figures["fidelity"]["tv_2way_mean"] for figures in site]),
            spread([figures["privacy"]["dcr_share_closer_to_train"] for figures in site]),
        )
    console.print(table)


def wide_tables(rows: int, columns: int, folder: Path) -> dict[str, Any]:
    """Three sites' tables of correlated columns (half categorical, half numeric) and a label, as parquet files."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=rows)
    data: dict[str, Any] = {"label": rng.random(rows) < 1 / (1 + np.exp(-(latent * 1.5 - 2)))}
    bins: dict[str, Any] = {"label": {"levels": [False, True]}}
    for c in range(columns - 1):
        value = 0.6 * latent + rng.normal(size=rows)
        if c % 2:
            data[f"x{c}"] = np.digitize(value, [-1, -0.3, 0.3, 1]).astype(np.int64)
            bins[f"x{c}"] = {"levels": [0, 1, 2, 3, 4]}
        else:
            data[f"x{c}"] = value
            bins[f"x{c}"] = {"edges": [-8, -1.2, -0.6, -0.2, 0.2, 0.6, 1.2, 8]}
    frame = pl.DataFrame(data).with_columns(is_test=pl.Series(rng.random(rows) < 0.3))
    parts = np.array_split(np.arange(rows), [rows // 2, 3 * rows // 4])
    for s, part in enumerate(parts):
        frame[part].write_parquet(folder / f"site{s}.parquet")
    return bins


def wide_step(rows: int, columns: int, repeats: int, console: Console) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        bins = wide_tables(rows, columns, folder)
        raw = {
            "name": "synthetic-wide",
            "seed": 0,
            "approvals": "not_required",
            "datasets": {f"site{s}": {"kind": "file", "path": str(folder / f"site{s}.parquet")} for s in range(3)},
            "parties": {f"site{s}": {"role": "hospital", "data": {"dataset": f"site{s}"}} for s in range(3)},
            "steps": [{"kind": "synthesize", "params": {"label": "label", "features": {"numeric": ["x0", "x1"]}, "columns": bins, "epsilon": 4}}],
        }
        recipe = parse_recipe(yaml.safe_dump(raw))
        seconds = []
        for r in range(repeats):
            result = run_recipe(recipe, folder / f"run{r}")
            seconds.append(result.manifest["timings_seconds"]["synthesize"])
    table = Table(title=f"synthesize alone: {rows:,} rows × {columns} columns over 3 sites, ε = 4 (target ≤ 60 s)")
    for column in ("rows", "columns", "step s (median [range])", "measured pairs"):
        table.add_column(column, justify="right")
    table.add_row(f"{rows:,}", str(columns), spread(seconds, 2), str((columns - 1) * (columns - 2) // 2))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="A small cohort and one run: checks that it runs, measures nothing.")
    args = parser.parse_args()
    console = Console(width=200)
    repeats = 1 if args.smoke else args.repeats
    print_cohort(cohort_runs(repeats, args.smoke), console)
    wide_step(600 if args.smoke else args.rows, 6 if args.smoke else args.columns, 1 if args.smoke else 3, console)


if __name__ == "__main__":
    main()
