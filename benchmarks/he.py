"""Cost of CKKS aggregation next to plaintext aggregation, measured in the same run.

    python benchmarks/he.py [--sizes 1e3,1e4,1e5,1e6] [--clients 3,10] [--flagship-rounds 150] [--repeats 3] [--smoke]

Per custody, size and client count: each client's encryption time, the
aggregator's time to add all ciphertexts, the decryption (with masking and
unmasking under custody key_holder), the bytes a client sends, the expansion
over float32, and the same weighted sum done in plaintext numpy.

Then the flagship's federated part (its split, fl_train and evaluate steps on
the hospitals' own table, without the linkage before them) run whole with
`aggregation: none` and with `ckks` under both custodies: wall time of the
whole run and of the fl_train step. The three runs alternate `--repeats`
times after a warm-up, so the machine's load falls on all of them alike; each
ratio is the median of the ratios within a repetition.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table
from smoke import small_cohort

from workbench import variants
from workbench.crypto import ckks
from workbench.recipe import Recipe, load_recipe, parse_recipe
from workbench.runner import run_recipe

FLAGSHIP = Path(__file__).parents[1] / "recipes" / "flagship.yaml"


def timed(function, *args):  # noqa: ANN001, ANN201 - a tiny timing helper
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def primitives(custody: str, sizes: list[int], client_counts: list[int], console: Console) -> None:
    """Encrypt, add and decrypt at the parameters and with the contexts each custody uses.

    clients: sites encrypt with the shared secret key, the aggregator adds with a keyless context, a site decrypts.
    key_holder: sites encrypt under the public key, the aggregator adds and masks, the key holder decrypts and
    rounds, the aggregator unmasks ("decrypt s" counts all three).
    """
    params = ckks.choose_parameters(1e-6, max(client_counts)) if custody == "clients" else ckks.masking_parameters()
    secret = ckks.secret_context(params)
    public = ckks.load_context(ckks.context_bytes(secret, secret=False, public_key=custody == "key_holder"))
    encryptor = secret if custody == "clients" else public

    def decrypt(total: list[bytes], size: int) -> np.ndarray:
        if custody == "clients":
            return ckks.decrypt(secret, total, size)
        masked, mask = ckks.mask(public, total, size)
        return ckks.release(ckks.decrypt(secret, masked, size)) - mask

    table = Table(
        title=f"CKKS aggregation, custody {custody} (N={params.poly_modulus_degree}, primes {params.data_bits}+"
        f"{params.special_bits} bits, scale 2^{params.scale_bits}) vs plaintext"
    )
    for column in (
        "params",
        "clients",
        "encrypt s/client",
        "aggregate s",
        "decrypt s",
        "bytes/client",
        "expansion",
        "max error",
        "plain aggregate s",
        "aggregate × plain",
    ):
        table.add_column(column, justify="right")
    rng = np.random.default_rng(0)
    for size in sizes:
        for clients in client_counts:
            updates = [rng.uniform(-1, 1, size) / clients for _ in range(clients)]
            encrypted, encrypt_seconds = [], 0.0
            for update in updates:
                chunks, seconds = timed(ckks.encrypt, encryptor, update)
                encrypted.append(chunks)
                encrypt_seconds += seconds
            total, aggregate_seconds = timed(ckks.add, public, encrypted)
            values, decrypt_seconds = timed(decrypt, total, size)
            _, plain_seconds = timed(lambda stacked=updates: np.sum(np.stack(stacked), axis=0))
            error = float(np.abs(values - np.sum(updates, axis=0)).max())
            table.add_row(
                f"{size:.0e}",
                str(clients),
                f"{encrypt_seconds / clients:.3f}",
                f"{aggregate_seconds:.3f}",
                f"{decrypt_seconds:.3f}",
                f"{sum(map(len, encrypted[0])):,}",
                f"{ckks.expansion(encrypted[0], size):.2f}",
                f"{error:.1e}",
                f"{plain_seconds:.5f}",
                f"{aggregate_seconds / plain_seconds:.0f}",
            )
    console.print(table)


def federated_part(rounds: int, overrides: list[str]) -> Recipe:
    """The flagship's split → fl_train → evaluate on each hospital's own table, as the chain stood before linkage.

    Linkage is timed in benchmarks/psi.py; here it would only dilute the ratio. A table made by a psi_link step
    is replaced by the requester's table it came from, and the features the link adds (payload, `matched`) are
    dropped. Only the first fl_train is kept, with plain aggregation; `variants.encrypted` derives the others.
    """
    raw: dict[str, Any] = yaml.safe_load(load_recipe(FLAGSHIP, overrides).to_yaml())
    links = {step["params"]["into"]: step["params"] for step in raw["steps"] if step["kind"] == "psi_link"}
    kinds = ("split", "fl_train", "evaluate")
    steps = [next(step for step in raw["steps"] if step["kind"] == kind) for kind in kinds]
    for step in steps:
        step.pop("at", None)
        params = step["params"]
        link = links.get(params["table"])
        if link:
            params["table"] = link["requester"]["table"]
            added = {*link.get("payload_columns", []), "matched"}
            features = params.get("features", {})
            features["numeric"] = [column for column in features.get("numeric", []) if column not in added]
            features["fill_missing"] = {column: value for column, value in features.get("fill_missing", {}).items() if column not in added}
    fl, evaluate = steps[1]["params"], steps[2]["params"]
    fl.update(rounds=rounds, aggregation="none")
    evaluate["models"] = [fl.get("save_as", "federated")]
    raw["steps"] = steps
    raw["parties"] = {name: party for name, party in raw["parties"].items() if party["role"] != "key_holder"}  # encrypted() adds it
    return parse_recipe(yaml.safe_dump(raw, sort_keys=False))


def timed_run(recipe: Recipe, out_dir: Path) -> tuple[float, float]:
    """Whole-run wall time and the fl_train step's own time (from the run's manifest)."""
    result, seconds = timed(run_recipe, recipe, out_dir)
    step = recipe.step_names()[next(i for i, spec in enumerate(recipe.steps) if spec.kind == "fl_train")]
    return seconds, float(result.manifest["timings_seconds"][step])


def flagship(rounds: int, repeats: int, console: Console, overrides: list[str], warm_up: bool = True) -> None:
    plain = federated_part(rounds, overrides)
    variants_ = {
        "none": plain,
        "ckks, custody clients": variants.encrypted(plain, "clients"),
        "ckks, custody key_holder": variants.encrypted(plain, "key_holder"),
    }
    compare_runs(variants_, rounds, repeats, console, warm_up)


def compare_runs(variants_: dict[str, Recipe], rounds: int, repeats: int, console: Console, warm_up: bool = True) -> None:
    """Whole-run and fl_train wall time of each variant, alternating, against the first (the unprotected one)."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants_}
    with tempfile.TemporaryDirectory() as scratch:
        for name, recipe in variants_.items() if warm_up else ():  # imports, caches and TenSEAL's first contexts, paid by no side
            run_recipe(recipe, Path(scratch) / f"warm-up-{len(times[name])}-{name}")
        for repeat in range(repeats):
            for index, (name, recipe) in enumerate(variants_.items()):
                times[name].append(timed_run(recipe, Path(scratch) / f"{repeat}-{index}"))
    base = next(iter(times))
    table = Table(title=f"Flagship federated part (split → fl_train → evaluate), {rounds} rounds, embedded runtime, median of {repeats} alternating runs")
    for column in ("aggregation", "whole run s", "fl_train s", f"whole run × {base}", f"fl_train × {base}"):
        table.add_column(column, justify="right")
    for name, samples in times.items():
        whole = statistics.median(run for run, _ in samples)
        step = statistics.median(fl for _, fl in samples)
        ratios = [(run / base_run, fl / base_fl) for (run, fl), (base_run, base_fl) in zip(samples, times[base])]
        table.add_row(name, f"{whole:.2f}", f"{step:.2f}", f"{statistics.median(r for r, _ in ratios):.2f}", f"{statistics.median(f for _, f in ratios):.2f}")
    console.print(table)


def aggregation_arguments(description: str) -> argparse.Namespace:
    """The options of the aggregation benchmarks (this one and secagg.py): sizes, client counts, the flagship's rounds and
    repeats, and --smoke, which shrinks them all. Sizes and client counts come back as lists of ints."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    parser.add_argument("--clients", default="3,10")
    parser.add_argument("--flagship-rounds", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of the flagship's federated part per aggregation")
    parser.add_argument(
        "--smoke", action="store_true", help="1e3 values, 3 clients, 2 rounds of a small cohort, no warm-up: checks the benchmark runs, measures nothing"
    )
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.clients, args.flagship_rounds, args.repeats = "1e3", "3", 2, 1
    args.sizes, args.clients = [int(float(size)) for size in args.sizes.split(",")], [int(c) for c in args.clients.split(",")]
    return args


def main() -> None:
    args = aggregation_arguments(__doc__.splitlines()[0])
    console = Console(width=180)
    for custody in ("clients", "key_holder"):
        primitives(custody, args.sizes, args.clients, console)
    flagship(args.flagship_rounds, args.repeats, console, small_cohort() if args.smoke else [], warm_up=not args.smoke)


if __name__ == "__main__":
    main()
