"""PSI linkage cost at 1e4, 1e5 and 1e6 ids a side, next to a plaintext polars join of the same ids in the same run.

    python benchmarks/psi.py [--sizes 1e4,1e5,1e6] [--protocols ecdh,labeled] [--workers 2] [--fpr 1e-6] [--data-structure auto] [--smoke]

Each (protocol, size) runs in a fresh process, so its peak memory is its own:
both parties in one process, as the psi_link step runs them, with the
workbench's session code (`workbench.crypto.psi.run_psi` on a thread pool,
`workbench.crypto.labeled_psi.run_labeled_psi` with the provider's sealing and
evaluation on a process pool). Half of each side's ids are in the other's.

Columns: wall and CPU seconds (CPU of the process and its worker processes),
ids per second (ids of one side / wall), bytes per element (every protocol
message / ids of one side), peak resident memory (the process, plus its
largest worker), the polars inner join of the same id lists, and the CPU
seconds other processes on the machine used meanwhile (from /proc/stat: on
a shared machine, wall time is only meaningful next to it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import struct
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from workbench.crypto.labeled_psi import LabeledPsiReceiver, LabeledPsiSender, run_labeled_psi
from workbench.crypto.psi import PsiClient, PsiServer, run_psi


def ids(n: int, seed: int = 1) -> tuple[list[str], list[str], int]:
    """Two shuffled id lists of n each, overlapping in n/2."""
    rng = random.Random(seed)
    common = n // 2
    client = [f"P{i:09d}" for i in range(n)]
    server = [f"P{i:09d}" for i in range(n - common, 2 * n - common)]
    rng.shuffle(client)
    rng.shuffle(server)
    return client, server, common


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine_busy() -> float:
    """CPU-seconds the whole machine has been busy (all processes, from /proc/stat): shows how much others took meanwhile."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def polars_join(client: list[str], server: list[str]) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), _cpu()
    joined = pl.DataFrame({"id": client}).join(pl.DataFrame({"id": server}), on="id", how="inner")
    return time.perf_counter() - wall, _cpu() - cpu, joined.height


def one(protocol: str, n: int, workers: int, fpr: float, structure: str) -> dict[str, Any]:
    """One measured session in this process."""
    client, server, common = ids(n)
    sent = [0]

    def carry(kind: str, payload: bytes) -> bytes:
        sent[0] += len(payload)
        return payload

    join_wall, join_cpu, join_rows = polars_join(client, server)
    detail = ""
    wall, cpu, busy = time.perf_counter(), _cpu(), machine_busy()
    if protocol == "ecdh":
        psi_client = PsiClient(client, reveal_intersection=True, parallelism=workers)
        psi_server = PsiServer(server, reveal_intersection=True, fpr=fpr, data_structure=structure, parallelism=workers)  # type: ignore[arg-type]
        detail = f"{psi_server.structure(n)}, fpr {fpr:g}"
        found = run_psi(psi_client, psi_server, carry, carry, workers=workers).size
    else:
        payloads = [struct.pack("<4d", i, 1.0, 2.0, 3.0) for i in range(n)]
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
        detail = f"4 float64 payload, {workers} provider process(es)"
        try:
            found = len(run_labeled_psi(LabeledPsiReceiver(client), LabeledPsiSender(server, payloads, executor=pool, parallelism=workers), carry, carry))
        finally:
            if pool is not None:
                pool.shutdown()
    wall, cpu, busy = time.perf_counter() - wall, _cpu() - cpu, machine_busy() - busy
    assert found == common == join_rows, (found, common, join_rows)
    own, children = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "protocol": protocol,
        "n": n,
        "wall": wall,
        "cpu": cpu,
        "ids_per_s": n / wall,
        "bytes_per_element": sent[0] / n,
        "peak_mb": (own + children) / 1024,
        "join_wall": join_wall,
        "join_cpu": join_cpu,
        "detail": detail,
        "others_cpu": busy - cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="ids a side, comma-separated")
    parser.add_argument("--protocols", default="ecdh,labeled", help="ecdh (reveal requester/both/cardinality) and/or labeled (reveal payload)")
    parser.add_argument("--workers", type=int, default=2, help="threads (ecdh) or provider processes (labeled)")
    parser.add_argument("--fpr", type=float, default=1e-6, help="ecdh: false-positive rate of the whole query (GCS)")
    parser.add_argument("--data-structure", default="auto", choices=["auto", "gcs", "raw", "bloom"], help="ecdh setup encoding")
    parser.add_argument("--smoke", action="store_true", help="200 ids a side, one worker: checks the benchmark runs, measures nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.workers = "200", 1
    if args.one:
        protocol, n = args.one.split(":")
        print(json.dumps(one(protocol, int(n), args.workers, args.fpr, args.data_structure)))
        return
    console = Console(width=170)
    table = Table(title=f"PSI next to a polars join, 50 % overlap, {args.workers} workers")
    for column in ("protocol", "ids a side", "wall s", "CPU s", "ids/s", "B/element", "peak MB", "join wall s", "PSI / join", "others' CPU s", "setup"):
        table.add_column(column, justify="left" if column in {"protocol", "setup"} else "right")
    for protocol in args.protocols.split(","):
        for n in (int(float(size)) for size in args.sizes.split(",")):
            command = [
                sys.executable,
                __file__,
                "--one",
                f"{protocol}:{n}",
                "--workers",
                str(args.workers),
                "--fpr",
                str(args.fpr),
                "--data-structure",
                args.data_structure,
            ]
            r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            table.add_row(
                protocol,
                f"{n:,}",
                f"{r['wall']:.1f}",
                f"{r['cpu']:.1f}",
                f"{r['ids_per_s']:,.0f}",
                f"{r['bytes_per_element']:.1f}",
                f"{r['peak_mb']:.0f}",
                f"{r['join_wall']:.3f}",
                f"{r['wall'] / r['join_wall']:,.0f}×",
                f"{r['others_cpu']:.0f}",
                r["detail"],
            )
            console.print(f"{protocol} {n:,}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s", highlight=False)
    console.print(table)


if __name__ == "__main__":
    main()
