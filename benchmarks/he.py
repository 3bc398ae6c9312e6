"""Cost of CKKS aggregation next to plaintext aggregation, measured in the same run.

    python benchmarks/he.py [--sizes 1e3,1e4,1e5,1e6] [--clients 3,10] [--flagship-rounds 150]

Per size and client count: each client's encryption time, the aggregator's
time to add all ciphertexts, one decryption, the bytes a client sends, the
expansion over float32, and the same weighted sum done in plaintext numpy.
Then the flagship recipe's whole-run wall time with `aggregation: ckks` over
`aggregation: none`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from workbench import variants
from workbench.crypto import ckks
from workbench.recipe import load_recipe
from workbench.runner import run_recipe

FLAGSHIP = Path(__file__).parents[1] / "recipes" / "flagship.yaml"


def timed(function, *args):  # noqa: ANN001, ANN201 - a tiny timing helper
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def primitives(sizes: list[int], client_counts: list[int], console: Console) -> None:
    params = ckks.choose_parameters(1e-6, max(client_counts))
    secret = ckks.secret_context(params)
    keyless = ckks.load_context(ckks.context_bytes(secret, secret=False, public_key=False))
    table = Table(title=f"CKKS aggregation (N={params.poly_modulus_degree}, primes {params.data_bits}+{params.special_bits} bits, "
                        f"scale 2^{params.scale_bits}) vs plaintext")
    for column in ("params", "clients", "encrypt s/client", "aggregate s", "decrypt s", "bytes/client", "expansion",
                   "max error", "plain aggregate s", "aggregate × plain"):
        table.add_column(column, justify="right")
    rng = np.random.default_rng(0)
    for size in sizes:
        for clients in client_counts:
            updates = [rng.uniform(-1, 1, size) / clients for _ in range(clients)]
            encrypted, encrypt_seconds = [], 0.0
            for update in updates:
                chunks, seconds = timed(ckks.encrypt, secret, update)
                encrypted.append(chunks)
                encrypt_seconds += seconds
            total, aggregate_seconds = timed(ckks.add, keyless, encrypted)
            values, decrypt_seconds = timed(ckks.decrypt, secret, total, size)
            _, plain_seconds = timed(lambda stacked=updates: np.sum(np.stack(stacked), axis=0))
            error = float(np.abs(values - np.sum(updates, axis=0)).max())
            table.add_row(f"{size:.0e}", str(clients), f"{encrypt_seconds / clients:.3f}", f"{aggregate_seconds:.3f}", f"{decrypt_seconds:.3f}",
                          f"{sum(map(len, encrypted[0])):,}", f"{ckks.expansion(encrypted[0], size):.2f}", f"{error:.1e}",
                          f"{plain_seconds:.5f}", f"{aggregate_seconds / plain_seconds:.0f}")
    console.print(table)


def flagship(rounds: int, console: Console) -> None:
    index = next(i for i, step in enumerate(load_recipe(FLAGSHIP).steps) if step.kind == "fl_train")
    plain = load_recipe(FLAGSHIP, [f"steps[{index}].params.rounds={rounds}"])
    encrypted = variants.encrypted(plain)
    with tempfile.TemporaryDirectory() as scratch:
        run_recipe(plain, Path(scratch) / "warm-up")  # imports and caches, paid by neither side
        _, plain_seconds = timed(run_recipe, plain, Path(scratch) / "none")
        _, ckks_seconds = timed(run_recipe, encrypted, Path(scratch) / "ckks")
    table = Table(title=f"Flagship recipe, whole run, {rounds} federated rounds, embedded runtime")
    for column in ("aggregation: none (s)", "aggregation: ckks (s)", "ckks / none"):
        table.add_column(column, justify="right")
    table.add_row(f"{plain_seconds:.2f}", f"{ckks_seconds:.2f}", f"{ckks_seconds / plain_seconds:.2f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    parser.add_argument("--clients", default="3,10")
    parser.add_argument("--flagship-rounds", type=int, default=150)
    args = parser.parse_args()
    console = Console(width=180)
    primitives([int(float(s)) for s in args.sizes.split(",")], [int(c) for c in args.clients.split(",")], console)
    flagship(args.flagship_rounds, console)


if __name__ == "__main__":
    main()
