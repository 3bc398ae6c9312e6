"""Held-out AUC of plain FedAvg, sample-level DP and client-level DP at the same epsilon, on the UCI heart study's three sites.

    python benchmarks/client_dp.py [--epsilon 2] [--rounds 20] [--repeats 10] [--clip 1.0] [--smoke]

Client-level DP (`dp.level: client`) noises the average of the updates with sigma * C / m per coordinate every round;
with m = 3 sites that noise is far larger than any update clipped to C, which is why the mode suits hundreds of sites
(docs/privacy.md). Its noise is fresh at every run (Flower draws it unseeded), so it runs `--repeats` times and the
table gives the spread; plain and sample-level training repeat exactly from the seed and run once.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from workbench.recipe import parse_recipe
from workbench.runner import run_recipe

SITES = ("cleveland", "hungary", "va_long_beach")
TRAINING = "label: heart_disease, features: {numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak, exang]}, batch_size: 64, learning_rate: 0.5"
SMOKE_TRAINING = TRAINING.replace("batch_size: 64", "batch_size: null")
"""Full batches in a smoke run: each site's noise calibration is instant at q = 1 (seconds at q = 0.46)."""


def recipe(epsilon: float, rounds: int, repeats: int, clip: float, training: str = TRAINING) -> str:
    """Split, plain FedAvg, sample-level DP (C = 1 per row), `repeats` client-level DP steps (C = `clip` per update), evaluate."""
    parties = "".join(f"  {site}: {{role: hospital, data: {{dataset: uci, part: {site}}}}}\n" for site in SITES)
    budget = f"epsilon: {epsilon}, delta: 1e-4"
    clients = [f"client_{i}" for i in range(repeats)]
    steps = [
        "{kind: split, params: {label: heart_disease}}",
        f"{{kind: fl_train, name: plain, params: {{{training}, rounds: {rounds}, save_as: plain}}}}",
        f"{{kind: fl_train, name: sample, params: {{{training}, rounds: {rounds}, dp: {{{budget}, clip: 1.0}}, save_as: sample}}}}",
        *(
            f"{{kind: fl_train, name: {name}, params: {{{training}, rounds: {rounds}, dp: {{level: client, {budget}, clip: {clip}}}, save_as: {name}}}}}"
            for name in clients
        ),
        f"{{kind: evaluate, params: {{label: heart_disease, models: [plain, sample, {', '.join(clients)}]}}}}",
    ]
    head = (
        f"name: client_dp\nseed: 1\napprovals: not_required\ndatasets: {{uci: {{kind: uci_heart}}}}\n"
        f"parties:\n{parties}  aggregator: {{role: aggregator}}\nsteps:\n"
    )
    return head + "".join(f"  - {step}\n" for step in steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--clip", type=float, default=1.0, help="client level's C (sample level keeps C = 1 per row)")
    parser.add_argument("--smoke", action="store_true", help="2 rounds, 2 repeats: checks the benchmark runs; measures nothing")
    args = parser.parse_args()
    rounds, repeats = (2, 2) if args.smoke else (args.rounds, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        training = SMOKE_TRAINING if args.smoke else TRAINING
        result = run_recipe(parse_recipe(recipe(args.epsilon, rounds, repeats, args.clip, training)), Path(folder) / "run")
    scores, steps = result.metrics["steps"]["evaluate"], result.metrics["steps"]

    def mean_auc(model: str) -> float:
        return statistics.fmean(scores[site][model]["auc"] for site in SITES)

    table = Table(title=f"Held-out AUC on the UCI heart study's 3 sites, epsilon {args.epsilon:g} (delta 1e-4), {rounds} rounds")
    for column in ("training", *SITES, "mean", "noise"):
        table.add_column(column)
    sample_sigma = max(figures["noise_multiplier"] for figures in steps["sample"]["aggregator"]["dp"].values())
    client = steps["client_0"]["aggregator"]["dp"]
    rows = [
        ("plain FedAvg", "plain", "none"),
        ("sample-level DP", "sample", f"per row, sigma <= {sample_sigma:.2f}"),
        *((f"client-level DP, run {i + 1}", f"client_{i}", f"sigma C/3 = {client['noise_std']:.2f}") for i in range(repeats)),
    ]
    for label, model, noise in rows:
        table.add_row(label, *(f"{scores[site][model]['auc']:.3f}" for site in SITES), f"{mean_auc(model):.3f}", noise)
    means = sorted(mean_auc(f"client_{i}") for i in range(repeats))
    console = Console()
    console.print(table)
    console.print(
        f"client-level DP over {repeats} runs: mean AUC median {statistics.median(means):.3f}, range {means[0]:.3f} to {means[-1]:.3f} "
        f"(sigma {client['noise_multiplier']:.2f}, C {client['clip']:g}); plain {mean_auc('plain'):.3f}, sample-level {mean_auc('sample'):.3f}"
    )


if __name__ == "__main__":
    main()
