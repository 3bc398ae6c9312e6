"""Every benchmark still runs: each file's `--smoke` (tiny sizes) exits 0 and prints its figures.

The figures of a smoke run measure nothing, and no test reads a time: speed belongs in the benchmarks themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"smoke.py"}
"""Modules the benchmarks share, not benchmarks."""
PRINTS = {
    "client_dp.py": ("Held-out AUC on the UCI heart study's 3 sites", "plain FedAvg", "sample-level", "client-level DP over 2 runs"),
    "cli.py": ("CLI wall time", "python -c pass", "workbench validate recipes/flagship.yaml", "workbench schema", "workbench run --help"),
    "runs_list.py": ("Runs list", "first listing (ms)", "steady poll (ms, median)", "whole logs re-read (ms)"),
    "fl.py": ("Federated rounds", "plain loop (no Flower)", "embedded"),
    "he.py": ("CKKS aggregation, custody clients", "CKKS aggregation, custody key_holder", "Flagship federated part", "ckks, custody key_holder"),
    "hostile_inputs.py": ("baseline: validate flagship", "yaml: billion laughs", "corpus: ", "slowest: "),
    "inference.py": ("Encrypted inference", "ms/patient", "query bytes/patient", "encrypted × plaintext"),
    "intervals.py": ("Coverage of 95 % AUC intervals", "logit DeLong covers", "6 / 114"),
    "privacy.py": ("Held-out AUC per site", "∞ (non-private)", "Audit share of the shipped flagship run", "One training step", "DP-SGD (ms)"),
    "psi.py": ("PSI next to a polars join", "ecdh", "labeled"),
    "small_sites.py": ("Synthetic cohort", "UCI heart sites", "trauma_center", "switzerland"),
    "synthetic.py": ("Synthetic cohort at general_hospital", "train-on-synthetic AUC", "synthesize alone", "measured pairs"),
    "vfl.py": ("Vertical LR, one hospital", "centralized numpy", "vertical, plain", "vertical, ckks", "max |w - w plain|"),
    "secagg.py": ("Secure aggregation by masking", "server s, 1 dropout", "CKKS aggregation, custody clients", "Flagship federated part", "secagg"),
}
"""Per benchmark, text its figures come under: titles, headers or row names."""

pytestmark = pytest.mark.slow  # each starts a Python process that imports the workbench and runs its protocol code


def test_every_benchmark_has_a_smoke_run_here() -> None:
    assert {path.name for path in BENCHMARKS.glob("*.py")} - HELPERS == set(PRINTS)


@pytest.mark.parametrize("name", sorted(PRINTS))
def test_smoke_run_prints_its_figures(name: str) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("FORCE_COLOR", "TTY_COMPATIBLE")} | {"NO_COLOR": "1"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), "--smoke"], cwd=BENCHMARKS.parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"benchmarks/{name} --smoke exited {done.returncode}:\n{done.stderr[-3000:]}"
    missing = [text for text in PRINTS[name] if text not in done.stdout]
    assert not missing, f"benchmarks/{name} --smoke printed no {missing}:\n{done.stdout[-3000:]}"
