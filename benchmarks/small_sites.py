"""Do small sites gain from federated training? Paired AUC differences against local-only, with 95 % intervals, over seeds.

    python benchmarks/small_sites.py [--seeds 5] [--smoke]

Two parts. The flagship's synthetic cohort (PSI linkage, local, FedAvg plain and CKKS, FedAvg fine-tuned at each site
for 20 steps), once per seed: each seed draws another cohort, split and training. The UCI heart sites
(recipes/small_sites.yaml), once per seed: the data are fixed, the seed changes the split. For each site and model
the table gives the median over seeds of the paired difference from local, and how many seeds show a gain or a loss
(DeLong's paired interval excludes zero), of how many scored it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from smoke import small_cohort

from workbench.recipe import Recipe, load_recipe
from workbench.report.evaluation import GAIN, LOSS, verdict
from workbench.report.scores import sites_of
from workbench.runner import run_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
FLAGSHIP_STEPS = ("link", "split", "local_train", "fl_plain", "keys_clients", "fl_ckks", "evaluate")
MODELS = ("federated", "federated_ckks", "federated_personalized")


def flagship(seed: int, smoke: bool) -> Recipe:
    """The flagship's federated part, personalization added, at `seed`."""
    overrides = [
        f"seed={seed}",
        "steps[fl_plain].params.personalize={steps: 20, learning_rate: 0.2}",
        f"steps[evaluate].params.models=[local, {', '.join(MODELS)}]",
        *(small_cohort() + ["steps[fl_plain].params.rounds=3", "steps[fl_ckks].params.rounds=3"] if smoke else []),
    ]
    recipe = load_recipe(RECIPES / "flagship.yaml", overrides)
    return recipe.model_copy(update={"steps": [step for name, step in zip(recipe.step_names(), recipe.steps) if name in FLAGSHIP_STEPS]})


def uci(seed: int, smoke: bool) -> Recipe:
    smaller = ["steps[fl_plain].params.rounds=3", "steps[fl_ckks].params.rounds=3"] if smoke else []
    return load_recipe(RECIPES / "small_sites.yaml", [f"seed={seed}", *smaller])


def tabulate(console: Console, title: str, runs: list[dict[str, Any]], models: tuple[str, ...]) -> None:
    sites = sorted(sites_of(runs[0]), key=lambda site: runs[0][site]["local"]["n"])
    table = Table(title=title)
    for column in ("site", "held-out n (positives), median", "local AUC, median", *(f"{m} − local: median, seeds gain/loss/scored" for m in models)):
        table.add_column(column)
    for site in sites:
        cells = []
        for model in models:
            compared = [run[site][model]["versus"] for run in runs if run[site][model].get("versus")]
            said = [verdict(v) for v in compared]
            median = statistics.median(v["auc_difference"] for v in compared) if compared else float("nan")
            cells.append(f"{median:+.3f}, {said.count(GAIN)}/{said.count(LOSS)}/{len(compared)}")
        local = [run[site]["local"]["auc"] for run in runs if run[site]["local"]["auc"] is not None]
        n = statistics.median(run[site]["local"]["n"] for run in runs)
        positives = statistics.median(run[site]["local"]["positives"] for run in runs)
        table.add_row(site, f"{n:.0f} ({positives:.0f})", f"{statistics.median(local):.3f}" if local else "—", *cells)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="2 seeds, a small cohort, 3 rounds: checks the benchmark runs; measures nothing")
    args = parser.parse_args()
    seeds = range(1, 3 if args.smoke else args.seeds + 1)
    console = Console(width=200)
    with tempfile.TemporaryDirectory() as folder:
        for title, build, models in (
            ("Synthetic cohort (the flagship's federated part)", flagship, MODELS),
            ("UCI heart sites (recipes/small_sites.yaml)", uci, (*MODELS, "local@cleveland")),
        ):
            runs = [
                run_recipe(build(seed, args.smoke), Path(folder) / f"{build.__name__}-{seed}", base_dir=RECIPES).metrics["steps"]["evaluate"] for seed in seeds
            ]
            tabulate(console, f"{title}: paired AUC difference from local over {len(runs)} seeds", runs, models)


if __name__ == "__main__":
    main()
