"""Cost of the lab's runs list (`GET runs`, polled every second by the sidebar) over many runs, measured in one run.

    python benchmarks/runs_list.py [--runs 200] [--events 4000] [--polls 20] [--smoke]

Synthetic run directories, each with an events.jsonl of `--events` events (steps, progress, one message event per
ledger entry, as a flagship run writes), its status.json and metrics.json; two of them still running (their pid is
this process) and growing between polls. Printed, in milliseconds: the first listing (every log folded once), the
median steady poll (what the sidebar pays each second), and the re-read of every run's whole event log that each
poll cost before the listing became incremental, with the ratio. Target (issue 19): ≤ 100 ms a poll at 200 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from workbench.events import MessageSent, Progress, RunFinished, RunStarted, StepFinished, StepStarted
from workbench.ledger import Message, Protection
from workbench.run_state import EVENTS_FILE, STATUS_FILE, read_run
from workbench.server.limits import WorkbenchLimits
from workbench.server.runs import RunManager
from workbench.server.workspace import Workspace

STEPS = [f"step_{i}" for i in range(10)]


def event_lines(events: int, finished: bool) -> list[str]:
    lines = [RunStarted(recipe="bench", recipe_hash="0" * 64, out_dir="o", steps=STEPS, started="2026-12-04T12:00:00")]
    per_step = max(1, events // len(STEPS))
    for index, step in enumerate(STEPS):
        lines.append(StepStarted(step=step, kind="fl_train", index=index, total=len(STEPS), parties=["a", "b", "c"]))
        for i in range(per_step // 2):
            lines.append(Progress(step=step, done=i, total=per_step // 2, label=f"round {i}"))
            message = Message(len(lines), step, "a", "aggregator", "fl.update", 2048, Protection.CKKS, False, "0" * 64)
            lines.append(MessageSent(message=message))
        lines.append(StepFinished(step=step, seconds=1.0))
    if finished:
        lines.append(RunFinished(out_dir="o", seconds=10.0))
    return [json.dumps(event.to_dict()) + "\n" for event in lines]


def make_runs(runs_dir: Path, runs: int, events: int) -> list[Path]:
    finished, running = "".join(event_lines(events, True)), "".join(event_lines(events, False))
    metrics = json.dumps({"steps": {"evaluate": {site: {"local": {"auc": 0.8, "n": 100}} for site in ("a", "b", "c")}}})
    live = []
    for n in range(runs):
        folder = runs_dir / f"bench-0123abcd-20261204-{n:06d}-0000abcd"
        folder.mkdir(parents=True)
        is_live = n < 2
        (folder / EVENTS_FILE).write_text(running if is_live else finished)
        (folder / STATUS_FILE).write_text(json.dumps({"status": "running" if is_live else "finished", "step": None, "pid": os.getpid()}))
        (folder / "metrics.json").write_text(metrics)
        (folder / "recipe.yaml").write_text("name: bench\n")
        if is_live:
            live.append(folder)
    return live


def milliseconds(work: object) -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    return 1000 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="20 runs of 400 events, 5 polls")
    args = parser.parse_args()
    runs, events, polls = (20, 400, 5) if args.smoke else (args.runs, args.events, args.polls)
    with tempfile.TemporaryDirectory() as root:
        runs_dir = Path(root) / "runs"
        live = make_runs(runs_dir, runs, events)
        folders = sorted(p for p in runs_dir.iterdir() if p.is_dir())
        manager = RunManager(Workspace(Path(root), package_dir=Path(root)), WorkbenchLimits())
        first = milliseconds(manager.summaries)
        steady = []
        for poll in range(polls):
            for folder in live:  # the running runs move on between polls
                with (folder / EVENTS_FILE).open("a") as handle:
                    handle.write(json.dumps(Progress(step=STEPS[-1], done=poll, total=polls, label="round").to_dict()) + "\n")
            steady.append(milliseconds(manager.summaries))
        listed = manager.summaries()
        assert len(listed) == runs and sum(s["status"] == "running" for s in listed) == len(live), "every run listed, the live ones running"
        full = statistics.median(milliseconds(lambda: [(read_run(f), json.loads((f / "metrics.json").read_text())) for f in folders]) for _ in range(3))
    table = Table(title=f"Runs list: {runs} runs of {events:,} events each, 2 of them running")
    for column in ("first listing (ms)", "steady poll (ms, median)", "whole logs re-read (ms)", "× steady poll"):
        table.add_column(column, justify="right")
    poll = statistics.median(steady)
    table.add_row(f"{first:.0f}", f"{poll:.1f}", f"{full:.0f}", f"{full / poll:.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
