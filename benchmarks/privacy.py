"""What privacy costs on the flagship: utility at each epsilon next to non-private training, the audit's share of a
run, and a DP-SGD step next to a plain SGD step, all measured in the same run.

    python benchmarks/privacy.py [--epsilons 0.5,1,2,4,8] [--repeats 20] [--smoke]

1. Utility: the flagship's linkage and split, then its plain federated training and the same training by DP-SGD at
   each epsilon (each site calibrates its noise to its own rows), every model scored on each site's held-out rows.
   Twice: as the flagship standardizes (pooled moments, which DP does not cover), and as privacy_frontier.yaml scales
   (public feature bounds, so DP covers the whole training). Target: within 0.02 AUC of non-private at epsilon 4 at
   the large site.
2. Audit share: the shipped flagship, run whole; the audit step's wall time over the run's. Target: at most 25 %.
3. DP-SGD step: per-row gradients, clipping and noise on a Poisson batch against one mini-batch SGD step of the same
   expected size, on rows shaped as the large site's training rows (3,500 x 20), for both model families (median).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table
from smoke import small_cohort

from workbench.models.model import ModelSpec, sgd_epochs
from workbench.privacy.dp_sgd import dp_sgd_epochs
from workbench.recipe import Recipe, load_recipe, parse_recipe
from workbench.runner import run_recipe

RECIPES = Path(__file__).parents[1] / "recipes"
RECIPE = RECIPES / "flagship.yaml"
FRONTIER = RECIPES / "privacy_frontier.yaml"
"""The flagship's training with public feature bounds: the scaling reads no row, so the DP guarantee covers all of it."""
LARGE_SITE = "general_hospital"
TARGET_EPSILON, TARGET_AUC_GAP, TARGET_AUDIT_SHARE = 4.0, 0.02, 0.25


def frontier_recipe(flagship: Recipe, epsilons: list[float], draws: int) -> Recipe:
    """Linkage, split and plain federated training of the flagship, the same training `draws` times at each epsilon (the
    noise is fresh each time), then evaluate."""
    raw: dict[str, Any] = yaml.safe_load(flagship.to_yaml())
    names = flagship.step_names()
    keep = {"link", "split", "fl_plain"}
    steps = [step for name, step in zip(names, raw["steps"]) if name in keep]
    plain = next(step for name, step in zip(names, raw["steps"]) if name == "fl_plain")
    models = [plain["params"]["save_as"]]
    for epsilon in epsilons:
        for draw in range(draws):
            dp = {"epsilon": epsilon, "delta": 1e-5, "clip": 1.0}
            models.append(_model(epsilon, draw))
            steps.append({"kind": "fl_train", "name": f"fl_{models[-1]}", "params": {**plain["params"], "dp": dp, "save_as": models[-1]}})
    evaluate = next(step for step in raw["steps"] if step["kind"] == "evaluate")
    steps.append({**evaluate, "params": {**evaluate["params"], "models": models}})
    raw["steps"] = steps
    return parse_recipe(yaml.safe_dump(raw, sort_keys=False), "privacy frontier (benchmark)")


def _model(epsilon: float, draw: int) -> str:
    return f"dp_{epsilon:g}_{draw}"


def smoke_overrides(recipe: Path) -> list[str]:
    """A twentieth of the cohort and 3 rounds of every federated training in `recipe`: checks the benchmark runs."""
    loaded = load_recipe(recipe)
    return [*small_cohort(), *(f"steps[{name}].params.rounds=3" for name, step in zip(loaded.step_names(), loaded.steps) if step.kind == "fl_train")]


def utility(console: Console, recipe: Path, smoke: bool, epsilons: list[float], draws: int, folder: Path) -> bool:
    base = load_recipe(recipe, smoke_overrides(recipe) if smoke else [])
    public = base.steps[base.step_names().index("fl_plain")].params.features.public_scaling
    scaling = "public feature bounds (covered by DP)" if public else "pooled moments (not covered by DP)"
    run = run_recipe(frontier_recipe(base, epsilons, draws), folder / f"frontier-{recipe.stem}")
    scores = run.metrics["steps"]["evaluate"]
    sites = sorted(scores, key=lambda site: -scores[site]["federated"]["n"])

    def aucs(epsilon: float, site: str) -> list[float]:
        return [scores[site][_model(epsilon, draw)]["auc"] for draw in range(draws)]

    table = Table(title=f"Held-out AUC per site, DP-SGD at each epsilon (median, and min to max, of {draws} noise draws) next to non-private FedAvg, same run")
    table.caption = f"{recipe.name}; scaling by {scaling}"
    for column in ("epsilon (target)", *(f"AUC {site}" for site in sites), f"median Δ {LARGE_SITE}", "largest ε spent", "σ at the large site"):
        table.add_column(column, justify="right")
    table.add_row("∞ (non-private)", *(f"{scores[s]['federated']['auc']:.4f}" for s in sites), "—", "—", "—")
    lost: dict[float, float] = {}
    for epsilon in epsilons:
        spent = [run.metrics["steps"][f"fl_{_model(epsilon, draw)}"]["aggregator"]["dp"] for draw in range(draws)]
        lost[epsilon] = scores[LARGE_SITE]["federated"]["auc"] - statistics.median(aucs(epsilon, LARGE_SITE))
        table.add_row(
            f"{epsilon:g}",
            *(f"{statistics.median(aucs(epsilon, s)):.4f} ({min(aucs(epsilon, s)):.3f}–{max(aucs(epsilon, s)):.3f})" for s in sites),
            f"{-lost[epsilon]:+.4f}",
            f"{max(figures['epsilon'] for account in spent for figures in account.values()):.3f}",
            f"{spent[0][LARGE_SITE]['noise_multiplier']:.2f}",
        )
    console.print(table)
    if TARGET_EPSILON not in epsilons:
        return True
    met = lost[TARGET_EPSILON] <= TARGET_AUC_GAP
    console.print(
        f"target: median AUC at epsilon {TARGET_EPSILON:g} within {TARGET_AUC_GAP} of non-private at {LARGE_SITE} ({scaling}): "
        f"AUC lost {lost[TARGET_EPSILON]:+.4f}, {'met' if met else 'MISSED'}"
    )
    return met


def audit_share(console: Console, smoke: bool, folder: Path) -> bool:
    run = run_recipe(load_recipe(RECIPE, smoke_overrides(RECIPE) if smoke else []), folder / "flagship")
    timings: dict[str, float] = run.manifest["timings_seconds"]
    total = sum(timings.values())
    share = timings["audit"] / total
    table = Table(title="Audit share of the shipped flagship run")
    for column in ("step", "seconds", "share"):
        table.add_column(column, justify="right")
    for name, seconds in sorted(timings.items(), key=lambda item: -item[1])[:6]:
        table.add_row(name, f"{seconds:.2f}", f"{seconds / total:.1%}")
    table.add_row("all steps", f"{total:.2f}", "100%")
    console.print(table)
    met = share <= TARGET_AUDIT_SHARE
    models = len(run.metrics["steps"]["audit"][LARGE_SITE])
    verdict = "met" if met else "MISSED"
    console.print(f"target: audit at most {TARGET_AUDIT_SHARE:.0%} of the run: {share:.1%} ({models} models audited at each of 3 sites), {verdict}")
    console.print(f"DP-SGD federated training over plain, whole step (fl_dp / fl_plain): {timings['fl_dp'] / timings['fl_plain']:.2f}x")
    return met


def step_cost(console: Console, repeats: int, rows: int, features: int, batch: int) -> None:
    """One DP-SGD step against one plain SGD step on a batch of the same expected size."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(rows, features))
    y = (rng.random(rows) < 1 / (1 + np.exp(-Z[:, 0]))).astype(float)
    table = Table(title=f"One training step, {rows} rows x {features} features, batch {batch} (median of {repeats})")
    for column in ("model", "plain SGD (ms)", "DP-SGD (ms)", "× plain"):
        table.add_column(column, justify="right")
    for spec in (ModelSpec(family="logistic"), ModelSpec(family="mlp", hidden=16)):
        family = spec.build()
        params = family.init_params(features, rng)
        sample = rng.permutation(rows)[:batch]
        common = {"l2": spec.l2, "learning_rate": 0.1, "rng": rng}
        plain = partial(sgd_epochs, family, params, Z[sample], y[sample], epochs=1, batch_size=batch, **common)
        private = partial(dp_sgd_epochs, family, params, Z, y, steps=1, sample_rate=batch / rows, clip=1.0, noise_multiplier=1.0, **common)
        times = [_median_ms(run, repeats) for run in (plain, private)]
        table.add_row(spec.family, f"{times[0]:.3f}", f"{times[1]:.3f}", f"{times[1] / times[0]:.1f}")
    console.print(table)


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    function()  # warm caches and imports
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", default="0.5,1,2,4,8", help="target epsilons, comma-separated")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of each training step timed")
    parser.add_argument("--draws", type=int, default=5, help="DP trainings at each epsilon, each with fresh noise")
    parser.add_argument("--smoke", action="store_true", help="a twentieth of the cohort, 3 rounds: checks the benchmark runs, measures nothing")
    args = parser.parse_args()
    console = Console(width=220)
    epsilons = [float(text) for text in args.epsilons.split(",")]
    if args.smoke:
        epsilons = epsilons[-2:]
    with tempfile.TemporaryDirectory() as folder:
        draws = 1 if args.smoke else args.draws
        met = utility(console, RECIPE, args.smoke, epsilons, draws, Path(folder))
        if not args.smoke:  # the same code on the other recipe: a smoke run checks it once
            met = utility(console, FRONTIER, args.smoke, epsilons, draws, Path(folder)) and met
        met = audit_share(console, args.smoke, Path(folder)) and met
    step_cost(console, 3 if args.smoke else args.repeats, rows=3500, features=20, batch=64)
    console.print("all targets met" if met else "a target was missed (see above)")


if __name__ == "__main__":
    main()
