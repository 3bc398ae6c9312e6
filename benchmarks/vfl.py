"""Vertical logistic regression's cost per epoch next to centralized logistic regression on the joined table, in one run.

    python benchmarks/vfl.py [--rows 1e4,1e5] [--ehr 20] [--vendor 4] [--epochs 3] [--smoke]

One hospital holding `--ehr` EHR features and the labels, the vendor `--vendor` features, every row aligned; the
aggregator and (under CKKS) the arbiter: `workbench.vfl.protocol.train`, every party in this process, with a
recorder in place of the ledger. An epoch is one full-batch gradient step, one pass over every row (FATE's "epoch"
for its coordinated LR); its time is the median gap between iterations over `--epochs` of them, after the setup (key
generation, layout, step size) printed apart. Bytes are what every party sent in one epoch. Centralized: the same
gradient step in numpy on the joined table, and `models.logistic.Logistic`'s loss and gradient, in the same run. The
last column is how far the encrypted run's coefficients are from the plain run's after the same epochs: CKKS noise.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.special import expit

from workbench.ledger import Protection
from workbench.models.logistic import Logistic
from workbench.vfl.protocol import GuestRows, Parties, train

L2 = 0.01


class Meter:
    """Stands in for the ledger: counts the bytes sent, and when each iteration ended."""

    def __init__(self) -> None:
        self.bytes = 0
        self.marks: list[tuple[float, int]] = []

    def send(self, sender: str, receiver: str, kind: str, payload: bytes, protection: Protection, *, row_level: bool = False) -> bytes:
        self.bytes += len(payload)
        return payload

    def mark(self, iteration: int, norm: float) -> None:
        self.marks.append((time.perf_counter(), self.bytes))


def joined_table(rows: int, ehr: int, vendor: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardized EHR rows (with the intercept's column of ones last), the vendor's rows, and labels from both."""
    guest, host = rng.normal(size=(rows, ehr)), rng.normal(size=(rows, vendor))
    logit = guest @ rng.normal(scale=0.3, size=ehr) + host @ rng.normal(scale=0.6, size=vendor) - 1.0
    labels = (rng.random(rows) < expit(logit)).astype(float)
    return np.column_stack([guest, np.ones(rows)]), host, labels


def vertical(guest: np.ndarray, host: np.ndarray, labels: np.ndarray, arbiter: str | None, epochs: int) -> tuple[dict[str, float], np.ndarray]:
    """Seconds of setup, median seconds per epoch and bytes per epoch of the protocol with every row a training row;
    and the coefficients it reached."""
    rows = GuestRows(guest, labels, np.ones(len(labels), dtype=bool), guest[:0], labels[:0])
    meter = Meter()
    started = time.perf_counter()
    trained = train(
        meter.send,
        Parties(("hospital",), "vendor", "aggregator", arbiter),
        {"hospital": rows},
        {"hospital": host},
        l2=L2,
        iterations=epochs + 1,
        tolerance=1e-300,  # never stops early: every epoch is measured
        on_iteration=meter.mark,
    )
    (first, first_bytes), gaps = meter.marks[0], [later[0] - earlier[0] for earlier, later in zip(meter.marks, meter.marks[1:])]
    setup = first - started - (meter.marks[1][0] - first)  # the first iteration costs as much as any other
    figures = {"setup": setup, "epoch": statistics.median(gaps), "bytes": (meter.marks[-1][1] - first_bytes) / epochs}
    return figures, np.concatenate([trained.guest_weights, trained.host_weights])


def centralized(guest: np.ndarray, host: np.ndarray, labels: np.ndarray, epochs: int) -> dict[str, float]:
    """The same full-batch gradient step on the joined table: numpy by hand, and the workbench's logistic model."""
    joined = np.column_stack([guest, host])
    weights, seconds = np.zeros(joined.shape[1]), []
    for _ in range(epochs):
        start = time.perf_counter()
        gradient = joined.T @ (expit(joined @ weights) - labels) / len(labels)
        weights -= 0.5 * gradient
        seconds.append(time.perf_counter() - start)
    model, features, params, model_seconds = Logistic(), np.column_stack([guest[:, :-1], host]), np.zeros(joined.shape[1]), []
    for _ in range(epochs):
        start = time.perf_counter()
        _, gradient = model.loss_and_grad(params, features, labels, L2)
        params -= 0.5 * gradient
        model_seconds.append(time.perf_counter() - start)
    return {"epoch": statistics.median(seconds), "model": statistics.median(model_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1e4,1e5", help="Aligned rows, comma-separated.")
    parser.add_argument("--ehr", type=int, default=20, help="EHR features at the hospital (the intercept comes on top).")
    parser.add_argument("--vendor", type=int, default=4, help="Features at the vendor.")
    parser.add_argument("--epochs", type=int, default=3, help="Epochs measured per size and protection.")
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes: checks the benchmark runs, measures nothing.")
    args = parser.parse_args()
    sizes = [300, 5000] if args.smoke else [int(float(size)) for size in args.rows.split(",")]
    epochs = 2 if args.smoke else args.epochs
    rng = np.random.default_rng(7)
    table = Table(title=f"Vertical LR, one hospital ({args.ehr} EHR features + intercept) and the vendor ({args.vendor}), per epoch")
    for column in ("aligned rows", "protocol", "setup s", "s / epoch", "MB / epoch", "× centralized numpy", "max |w - w plain|"):
        table.add_column(column, justify="left" if column == "protocol" else "right")
    for rows in sizes:
        guest, host, labels = joined_table(rows, args.ehr, args.vendor, rng)
        baseline = centralized(guest, host, labels, max(epochs, 5))
        table.add_row(f"{rows:,}", "centralized numpy", "", f"{baseline['epoch']:.3g}", "", "1")
        table.add_row(f"{rows:,}", "centralized Logistic", "", f"{baseline['model']:.3g}", "", f"{baseline['model'] / baseline['epoch']:.1f}")
        plain: np.ndarray | None = None
        for name, arbiter in (("vertical, plain", None), ("vertical, ckks", "arbiter")):
            figures, weights = vertical(guest, host, labels, arbiter, epochs)
            plain = weights if plain is None else plain
            table.add_row(
                f"{rows:,}",
                name,
                f"{figures['setup']:.2f}",
                f"{figures['epoch']:.3g}",
                f"{figures['bytes'] / 1e6:.2f}",
                f"{figures['epoch'] / baseline['epoch']:.0f}",
                f"{np.abs(weights - plain).max():.1e}",
            )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
