"""Per-round cost of each federated runtime next to the plain training loop, measured in the same run.

    python benchmarks/fl.py [--rounds 30] [--deployment-rounds 10] [--runtimes embedded,deployment,simulation] [--smoke]

The plain loop does exactly the work a round needs (each site's local
training and held-out scoring, then the weighted average) with no Flower, no
messages and no serialization. A runtime's overhead per round is its median
round time minus the plain loop's. Three hospitals of the flagship cohort,
linked and split as the flagship does before its fl_train steps.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from smoke import small_cohort

from workbench.context import derive_rng
from workbench.fl.deployment import DeploymentSettings
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_federated
from workbench.fl.site_data import load_site
from workbench.models.metrics import binary_metrics
from workbench.models.model import sgd_epochs
from workbench.models.standardize import Standardizer, moments
from workbench.recipe import load_recipe
from workbench.runner import run_recipe

RECIPE = Path(__file__).parents[1] / "recipes" / "flagship.yaml"


def flagship_sites(folder: Path, overrides: list[str]) -> tuple[FLPlan, list[dict[str, str]]]:
    """The flagship's sites after its split step, written as each site's private file, and its FL plan."""
    recipe = load_recipe(RECIPE, overrides)
    fl_index = next(i for i, step in enumerate(recipe.steps) if step.kind == "fl_train")
    spec = recipe.steps[fl_index].params
    split_index = next(i for i, step in enumerate(recipe.steps) if step.kind == "split")
    head = recipe.model_copy(update={"steps": recipe.steps[: split_index + 1]})  # the linkage that makes fl_train's table, and the split
    stores = run_recipe(head, folder / "split-run").stores
    sites = [name for name, party in recipe.parties.items() if party.role.value == "hospital"]
    configs = []
    for site in sites:
        path = folder / f"{site}.parquet"
        stores[site].table(spec.table).write_parquet(path)
        configs.append({"party": site, "data-path": str(path)})
    return spec.plan("aggregator", sites, recipe.seed), configs


def plain_loop(plan: FLPlan, configs: list[dict[str, str]]) -> list[float]:
    """The same local work per round, in one loop: the floor any runtime adds to."""
    data = [load_site(c["data-path"], c["party"], plan.features.model_dump_json(), plan.label) for c in configs]
    stats = [moments(d.X_train) for d in data]
    standardizer = Standardizer.from_moments(*(sum(parts) for parts in zip(*stats)))
    family = plan.model.build()
    params = family.init_params(len(standardizer.center), derive_rng(plan.seed, "fl", "init"))
    times = []
    for server_round in range(1, plan.rounds + 1):
        start = time.perf_counter()
        updates, weights = [], []
        for config, site in zip(configs, data):
            rng = derive_rng(plan.seed, "fl", config["party"], f"round-{server_round}")
            updates.append(
                sgd_epochs(
                    family,
                    params,
                    standardizer.apply(site.X_train),
                    site.y_train,
                    l2=plan.model.l2,
                    learning_rate=plan.learning_rate,
                    epochs=plan.local_epochs,
                    batch_size=plan.batch_size,
                    rng=rng,
                )
            )
            weights.append(len(site.y_train))
        params = np.average(updates, axis=0, weights=weights)
        for site in data:
            Z = standardizer.apply(site.X_test)
            family.loss_and_grad(params, Z, site.y_test, 0.0)
            binary_metrics(site.y_test, family.predict_proba(params, Z))
        times.append(time.perf_counter() - start)
    return times


def runtime_rounds(runtime: str, plan: FLPlan, configs: list[dict[str, str]], workdir: Path) -> tuple[list[float], float]:
    """Seconds of each round after the first (start-up is reported apart), and the seconds until round 1 ended."""
    stamps: list[float] = []
    start = time.time()
    run_federated(runtime, plan, configs, lambda r, m: stamps.append(time.time()), lambda t: None, DeploymentSettings(), workdir)
    return list(np.diff(stamps)), stamps[0] - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds for the plain loop and the embedded runtime")
    parser.add_argument("--deployment-rounds", type=int, default=10, help="rounds for deployment and simulation")
    parser.add_argument("--runtimes", default="embedded,deployment,simulation")
    parser.add_argument("--smoke", action="store_true", help="a twentieth of the cohort, 3 rounds, embedded only: checks the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.deployment_rounds, args.runtimes = 3, 3, "embedded"
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        plan, configs = flagship_sites(folder, small_cohort() if args.smoke else [])
        plain = float(np.median(plain_loop(plan.model_copy(update={"rounds": args.rounds}), configs)))
        table = Table(title=f"Federated rounds, {len(configs)} hospitals (flagship cohort), 2-core machine")
        for column in ("runtime", "rounds", "median s / round", "overhead s / round", "× plain", "until round 1 (s)"):
            table.add_column(column, justify="left" if column == "runtime" else "right")
        table.add_row("plain loop (no Flower)", str(args.rounds), f"{plain:.4f}", "—", "1.0", "—")
        for runtime in args.runtimes.split(","):
            rounds = args.rounds if runtime == "embedded" else args.deployment_rounds
            per_round, first = runtime_rounds(runtime, plan.model_copy(update={"rounds": rounds}), configs, folder / runtime)
            median = float(np.median(per_round))
            table.add_row(runtime, str(rounds), f"{median:.4f}", f"{median - plain:.4f}", f"{median / plain:.1f}", f"{first:.1f}")
        console.print(table)


if __name__ == "__main__":
    main()
