"""Cost of encrypted inference (encrypted_inference) next to plaintext scoring, measured in the same run.

    python benchmarks/inference.py [--sizes 1,1e3,1e4] [--features 24] [--precision 1e-4] [--repeats 3] [--smoke]

Per number of patients: the querier's encryption, the holder's encrypted scoring (products with its weights,
re-randomization, flood), the querier's decryption, their sum per patient, the query's and the reply's bytes, the
largest error of a decrypted logit, and the same logits computed in plaintext numpy. Rows are raw clinical values
(counts in the thousands beside 0/1 flags) and the weights a logistic model's with its standardizer folded in, as the
step scores them. Each figure is the median of `--repeats` repetitions.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from workbench.crypto import ckks
from workbench.crypto import ckks_inference as ci


def once(sizes: list[int], features: int, precision: float, rng: np.random.Generator) -> dict[int, dict[str, float]]:
    params = ci.inference_parameters(precision)
    secret = ckks.secret_context(params)
    public = ckks.load_context(ckks.context_bytes(secret, secret=False))
    figures = {}
    for n in sizes:
        centre, spread = rng.choice([0.5, 60.0, 6000.0], features), rng.choice([0.5, 10.0, 2000.0], features)
        X = centre + spread * rng.normal(size=(n, features))
        weights, bias = rng.normal(size=features) / spread / np.sqrt(features), 0.0
        bias = float(-weights @ centre)
        start = time.perf_counter()
        query = [c for column in ci.encrypt_rows(secret, X) for c in column]
        encrypted = time.perf_counter()
        reply = ci.score(public, query, n, weights, bias, precision)
        scored = time.perf_counter()
        logits = ckks.decrypt(secret, reply, n)
        decrypted = time.perf_counter()
        plain = X @ weights + bias
        plain_seconds = time.perf_counter() - decrypted
        figures[n] = {
            "encrypt": encrypted - start,
            "score": scored - encrypted,
            "decrypt": decrypted - scored,
            "plain": plain_seconds,
            "query_bytes": sum(map(len, query)),
            "reply_bytes": sum(map(len, reply)),
            "error": float(np.abs(logits - plain).max()),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1e3,1e4", help="Patients per query, comma-separated.")
    parser.add_argument("--features", type=int, default=24)
    parser.add_argument("--precision", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes, one repetition: checks that it runs, measures nothing.")
    args = parser.parse_args()
    sizes = [1, 100] if args.smoke else [int(float(size)) for size in args.sizes.split(",")]
    repeats = 1 if args.smoke else args.repeats
    rng = np.random.default_rng(0)
    runs = [once(sizes, args.features, args.precision, rng) for _ in range(repeats)]
    params = ci.inference_parameters(args.precision)
    table = Table(
        title=f"Encrypted inference, {args.features} features (N={params.poly_modulus_degree}, primes {params.data_bits}+{params.special_bits} bits, "
        f"scale 2^{params.scale_bits}, precision {args.precision:g}) vs plaintext scoring, median of {repeats}"
    )
    for column in (
        "patients",
        "encrypt s",
        "score s",
        "decrypt s",
        "ms/patient",
        "query bytes/patient",
        "reply bytes",
        "max |Δlogit|",
        "plaintext s",
        "encrypted × plaintext",
    ):
        table.add_column(column, justify="right")
    for n in sizes:

        def median(key: str, n: int = n) -> float:
            return statistics.median(run[n][key] for run in runs)

        total = median("encrypt") + median("score") + median("decrypt")
        table.add_row(
            f"{n:,}",
            f"{median('encrypt'):.3f}",
            f"{median('score'):.3f}",
            f"{median('decrypt'):.3f}",
            f"{1000 * total / n:.3f}",
            f"{median('query_bytes') / n:,.0f}",
            f"{median('reply_bytes'):,.0f}",
            f"{max(run[n]['error'] for run in runs):.1e}",
            f"{median('plain'):.6f}",
            f"{total / max(median('plain'), 1e-9):,.0f}",
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
