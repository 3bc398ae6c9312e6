"""What one lab server lets the sidebar's runs use: how many at once, how large a recipe, how many rows, how much memory.

The REST API starts `workbench run` for whoever is logged in to Jupyter, on recipes that may come from anywhere (a
colleague's folder, a cloned repository), and a recipe that validates can still ask the generator for 2e8 people. These
budgets keep one click from taking the machine down. Set them in jupyter_server_config.py
(`c.WorkbenchLimits.memory_limit_gib = 16`), on the command line (`--WorkbenchLimits.max_concurrent_runs=4`) or, where
neither says, with the PPML_WORKBENCH_* environment variables below; 0 switches a budget off. `workbench run` in a
terminal has none of them: it runs what the person at the terminal asked for.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable

from traitlets import Float, Int, default
from traitlets.config import Configurable

from workbench.data.sources import SyntheticCohortSource
from workbench.recipe import Recipe
from workbench.recipe_problems import Problem

GIB = 2**30
DEFAULT_MAX_RECIPE_BYTES = 1_000_000
CPU_KILL_AFTER_S = 5
"""RLIMIT_CPU sends SIGXCPU at the soft limit and SIGKILL at the hard one; this is the gap between the two."""

ENV = {
    "max_concurrent_runs": "PPML_WORKBENCH_MAX_RUNS",
    "max_recipe_bytes": "PPML_WORKBENCH_MAX_RECIPE_BYTES",
    "max_dataset_rows": "PPML_WORKBENCH_MAX_ROWS",
    "memory_limit_gib": "PPML_WORKBENCH_MEMORY_GIB",
    "cpu_time_limit_s": "PPML_WORKBENCH_CPU_SECONDS",
}


def how_to_raise(trait: str) -> str:
    """The two ways to change a budget, for error messages that say what to do."""
    return f"c.WorkbenchLimits.{trait} in jupyter_server_config.py, or {ENV[trait]}" if trait in ENV else f"c.WorkbenchLimits.{trait}"


def _from_env(trait: str, fallback: float, integer: bool) -> float:
    """The trait's environment variable, if set; a value that is no number is an error naming the variable."""
    text = os.environ.get(ENV[trait], "").strip()
    if not text:
        return fallback
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value < 0 or (integer and not value.is_integer()):
        raise ValueError(f"{ENV[trait]}={text!r}: expected a {'whole ' if integer else ''}number >= 0 (0 switches the budget off)")
    return int(value) if integer else value


class WorkbenchLimits(Configurable):
    """Budgets for runs started from the sidebar; configured as c.WorkbenchLimits.<name>, else by PPML_WORKBENCH_* variables."""

    max_concurrent_runs = Int(help=f"Runs this server may have going at once; one more gets HTTP 429. Env: {ENV['max_concurrent_runs']}.").tag(config=True)
    max_recipe_bytes = Int(help=f"Largest recipe file the server reads, in bytes; checked before parsing. Env: {ENV['max_recipe_bytes']}.").tag(config=True)
    max_dataset_rows = Int(help=f"Most rows a generated dataset may declare (synthetic_cohort people). Env: {ENV['max_dataset_rows']}.").tag(config=True)
    memory_limit_gib = Float(help=f"Memory each run process may allocate (RLIMIT_DATA), in GiB. Env: {ENV['memory_limit_gib']}.").tag(config=True)
    cpu_time_limit_s = Int(help=f"CPU seconds of each run process (RLIMIT_CPU); off by default. Env: {ENV['cpu_time_limit_s']}.").tag(config=True)
    cancel_grace_s = Float(5.0, help="Seconds a cancelled run has to stop after SIGTERM before its process group gets SIGKILL.").tag(config=True)

    @default("max_concurrent_runs")
    def _default_runs(self) -> int:
        return int(_from_env("max_concurrent_runs", 2, integer=True))

    @default("max_recipe_bytes")
    def _default_recipe_bytes(self) -> int:
        return int(_from_env("max_recipe_bytes", DEFAULT_MAX_RECIPE_BYTES, integer=True))

    @default("max_dataset_rows")
    def _default_rows(self) -> int:
        return int(_from_env("max_dataset_rows", 2_000_000, integer=True))

    @default("memory_limit_gib")
    def _default_memory(self) -> float:
        return _from_env("memory_limit_gib", 8.0, integer=False)

    @default("cpu_time_limit_s")
    def _default_cpu(self) -> int:
        return int(_from_env("cpu_time_limit_s", 0, integer=True))

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_limit_gib * GIB)

    def preexec(self) -> Callable[[], None] | None:
        """The function the run's child calls before exec: set its memory and CPU limits, which its own children inherit.

        Memory is RLIMIT_DATA, not RLIMIT_AS: since Linux 4.7 it counts every private writable mapping (the heap, numpy's and
        polars' buffers), but not address space merely reserved, of which Ray (the simulation runtime), gRPC and jemalloc
        reserve far more than they use; under an RLIMIT_AS of 8 GiB a simulation run hangs at its first round.
        """
        limits = []
        if self.memory_bytes:
            limits.append((resource.RLIMIT_DATA, _capped(resource.RLIMIT_DATA, self.memory_bytes, self.memory_bytes)))
        if self.cpu_time_limit_s:
            limits.append((resource.RLIMIT_CPU, _capped(resource.RLIMIT_CPU, self.cpu_time_limit_s, self.cpu_time_limit_s + CPU_KILL_AFTER_S)))
        if not limits:
            return None

        def apply() -> None:  # runs in the forked child: nothing but the system calls
            for kind, values in limits:
                resource.setrlimit(kind, values)

        return apply


def _capped(kind: int, soft: int, hard: int) -> tuple[int, int]:
    """(soft, hard) no higher than the server's own hard limit, which an unprivileged child cannot raise."""
    ceiling = resource.getrlimit(kind)[1]
    return (soft, hard) if ceiling == resource.RLIM_INFINITY else (min(soft, ceiling), min(hard, ceiling))


def dataset_problems(recipe: Recipe, limits: WorkbenchLimits) -> list[Problem]:
    """Generated datasets that declare more rows than the budget, each named by its field, before anything is generated."""
    if not limits.max_dataset_rows:
        return []
    problems = []
    for name, source in recipe.datasets.items():
        if not isinstance(source, SyntheticCohortSource):
            continue  # a file holds what it holds (the memory budget still applies); uci_heart is fixed and small
        patients = sum(hospital.patients for hospital in source.hospitals)
        people = patients + source.vendor_only_people
        if people <= limits.max_dataset_rows:
            continue
        field = "vendor_only_people" if source.vendor_only_people >= patients else "hospitals"
        problems.append(
            Problem(
                ("datasets", name, field),
                f"dataset {name!r} would generate {people:,} people (vendor_only_people {source.vendor_only_people:,} + hospitals' patients "
                f"{patients:,}), over this server's budget of {limits.max_dataset_rows:,} rows; lower {field}, run the recipe in a terminal "
                f"with `workbench run`, or raise the budget ({how_to_raise('max_dataset_rows')})",
            )
        )
    return problems
