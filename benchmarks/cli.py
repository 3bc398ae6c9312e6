"""Wall time of the CLI's quick commands, next to a bare interpreter start measured in the same run.

    python benchmarks/cli.py [--repeats 5] [--smoke]

Each command runs as a fresh process, `python -m workbench ARGS` from the checkout this file is in (what the
`workbench` script runs): interpreter start, imports, and the command's own work, which is what a user waits for.
`python -c pass` is the floor every command adds to. The commands alternate, one run of each per repetition, so the
machine's load falls on all of them alike; median and min are over the repetitions, and each ratio is to the same
statistic of `python -c pass`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "python -c pass"
COMMANDS = {
    BASELINE: ["-c", "pass"],
    "workbench validate recipes/flagship.yaml": ["-m", "workbench", "validate", "recipes/flagship.yaml"],
    "workbench schema": ["-m", "workbench", "schema"],
    "workbench run --help": ["-m", "workbench", "run", "--help"],
}


def wall(arguments: list[str]) -> float:
    """Seconds until the process exits; a command that fails stops the benchmark (a fast failure is no figure)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command, alternating")
    parser.add_argument("--smoke", action="store_true", help="one run of each command: checks the benchmark runs, measures nothing")
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, arguments in COMMANDS.items():
            times[name].append(wall(arguments))
    base_median, base_min = statistics.median(times[BASELINE]), min(times[BASELINE])
    table = Table(title=f"CLI wall time, fresh process each, {repeats} alternating run(s) per command")
    for column in ("command", "median s", "min s", "median × pass", "min × pass"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, samples in times.items():
        median, least = statistics.median(samples), min(samples)
        table.add_row(name, f"{median:.3f}", f"{least:.3f}", f"{median / base_median:.1f}", f"{least / base_min:.1f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
