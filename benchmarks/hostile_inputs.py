"""How long hostile inputs take to be refused, next to validating the flagship in the same run.

`python benchmarks/hostile_inputs.py` prints, for each case of tests/corpus/ and for the YAML bombs of tests/test_safe_yaml.py,
the wall time of `workbench run` (in-process) until its refusal, and its ratio to `workbench validate recipes/flagship.yaml`.
`--smoke` times the bombs and the first few cases once each: it checks that the benchmark runs, and measures nothing.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_safe_yaml import LAUGHS  # noqa: E402
from workbench import safe_yaml  # noqa: E402
from workbench.cli import app  # noqa: E402


def seconds(call: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    smoke = "--smoke" in sys.argv[1:]
    repeats, cases = (1, 4) if smoke else (3, None)
    runner = CliRunner()
    baseline = seconds(lambda: runner.invoke(app, ["validate", str(ROOT / "recipes" / "flagship.yaml")]), repeats)
    print(f"baseline: validate flagship {baseline * 1000:.1f} ms")
    rows = [
        ("yaml: billion laughs", seconds(lambda: _refused(LAUGHS + "description: *i\n"), repeats)),
        ("yaml: 5000-deep nesting", seconds(lambda: _refused("d: " + "[" * 5000 + "]" * 5000), repeats)),
    ]
    for case in islice(sorted((ROOT / "tests" / "corpus" / "recipes").glob("*.yaml")), cases):
        rows.append((f"corpus: {case.stem}", seconds(lambda case=case: runner.invoke(app, ["run", str(case), "--out", "/tmp/wb-hostile/run"]), repeats)))
    print(f"{'input':<45} {'ms':>9} {'x validate':>11}")
    for name, value in rows:
        print(f"{name:<45} {value * 1000:>9.1f} {value / baseline:>11.2f}")
    print(f"slowest: {max(rows, key=lambda row: row[1])[0]}")


def _refused(text: str) -> None:
    try:
        safe_yaml.load(text)
    except safe_yaml.YamlError:
        return
    raise AssertionError("accepted")


if __name__ == "__main__":
    main()
