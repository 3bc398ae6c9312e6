"""The lab server's budgets for runs started from the sidebar: concurrency, cancel, recipe size, data size, memory."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import CANCEL_GRACE_S, MAX_RUNS, SLOW_RECIPE, SLOW_REF
from tests.server.live import JupyterProcess, private_dir
from workbench.server.limits import WorkbenchLimits
from workbench.server.runs import LOGS, RunManager
from workbench.server.workspace import Workspace

API = "ppml-workbench/api"
START_LIMIT_S = 90
"""How long a loaded machine may take to import the workbench in the run's process and reach the first federated round."""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups are read from /proc; Linux enforces RLIMIT_DATA on mmap")


def run_summary(server: JupyterProcess, run_id: str) -> dict[str, Any]:
    _, body = server.request("GET", f"{API}/runs")
    return next(run for run in body["runs"] if run["id"] == run_id)


def wait_for(condition: Callable[[], Any], limit_s: float, what: str) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {limit_s} s")


def run_pid(run_id: str) -> int | None:
    """The pid of the `workbench run` process writing into runs/<run_id> (its process group's leader)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and run_id in (entry / "cmdline").read_bytes().decode(errors="replace"):
                return int(entry.name)
        except OSError:
            continue
    return None


def live_group_members(pgid: int) -> list[int]:
    """Processes of that group that are not dead yet (a zombie has exited, whoever reaps it)."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else []
        except OSError:
            continue
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def start_slow_run(server: JupyterProcess) -> dict[str, Any]:
    status, started = server.request("POST", f"{API}/runs", {"ref": SLOW_REF})
    assert status == 201, started
    return started


def cancel(server: JupyterProcess, run_id: str) -> tuple[int, Any]:
    return server.request("DELETE", f"{API}/runs/{run_id}")


def test_a_run_beyond_the_concurrency_cap_is_refused_with_429_naming_the_limit_and_the_runs(server: JupyterProcess) -> None:
    first = start_slow_run(server)
    try:
        status, body = server.request("POST", f"{API}/runs", {"ref": "package/flagship.yaml"})
        assert status == 429, body
        assert f"at most {MAX_RUNS}" in body["message"] and first["id"] in body["message"]
        assert "max_concurrent_runs" in body["message"] and "PPML_WORKBENCH_MAX_RUNS" in body["message"]
    finally:
        status, _ = cancel(server, first["id"])
    assert status == 200
    status, again = server.request("POST", f"{API}/runs", {"ref": SLOW_REF})
    assert status == 201, "a cancelled run frees its slot"
    cancel(server, again["id"])


def test_cancel_stops_the_run_and_its_process_group_and_shows_it_interrupted(server: JupyterProcess) -> None:
    started = start_slow_run(server)
    run_id = started["id"]
    wait_for(lambda: (run_summary(server, run_id)["progress"] or {}).get("step") == "endless", START_LIMIT_S, "the federated step starting")
    pid = run_pid(run_id)
    assert pid is not None and live_group_members(pid), "the run's process is running in its own process group"
    began = time.monotonic()
    status, body = cancel(server, run_id)
    assert status == 200, body
    assert time.monotonic() - began < CANCEL_GRACE_S + 5
    assert body["status"] == "interrupted" and "cancelled" in body["error"]
    assert live_group_members(pid) == [], "no process of the run's group survives a cancel"
    assert run_pid(run_id) is None, "the server reaped the run's process"
    assert run_summary(server, run_id)["status"] == "interrupted"
    status, body = cancel(server, run_id)
    assert status == 409 and "not running" in body["message"]


def test_cancel_of_a_run_this_server_did_not_start_is_refused(server: JupyterProcess) -> None:
    status, body = cancel(server, "someone-else-20250101-000000")
    assert status == 404 and "not started by this server" in body["message"]


def test_a_recipe_file_over_the_size_budget_is_refused_before_it_is_parsed(server: JupyterProcess, workspace: Path) -> None:
    (workspace / "limits").mkdir(exist_ok=True)
    bloated = workspace / "limits" / "bloated.recipe.yaml"
    bloated.write_text(SLOW_RECIPE + "# padding\n" * 110_000)
    ref = "workspace/limits/bloated.recipe.yaml"
    runs_before = set((workspace / "runs").iterdir()) if (workspace / "runs").is_dir() else set()
    status, body = server.request("POST", f"{API}/runs", {"ref": ref})
    assert status == 400 and ref in body["message"] and "budget of 1,000,000 bytes" in body["message"]
    assert "max_recipe_bytes" in body["message"]
    assert (set((workspace / "runs").iterdir()) if (workspace / "runs").is_dir() else set()) == runs_before
    _, validation = server.request("POST", f"{API}/recipes/validate", {"ref": ref})
    assert not validation["ok"] and "budget of 1,000,000 bytes" in validation["problems"][0]["message"]
    _, gallery = server.request("GET", f"{API}/recipes")
    card = next(card for card in gallery["recipes"] if card["ref"] == ref)
    assert card["name"] == "bloated.recipe.yaml" and "budget" in card["problems"][0]["message"]


def test_a_dataset_over_the_row_budget_is_refused_naming_the_dataset_and_field(server: JupyterProcess, workspace: Path) -> None:
    (workspace / "limits").mkdir(exist_ok=True)
    text = SLOW_RECIPE.replace("vendor_only_people: 0", "vendor_only_people: 10000000")
    (workspace / "limits" / "huge.recipe.yaml").write_text(text)
    line = text[: text.index("vendor_only_people")].count("\n") + 1
    ref = "workspace/limits/huge.recipe.yaml"
    _, validation = server.request("POST", f"{API}/recipes/validate", {"ref": ref})
    assert validation["ok"], "the recipe itself is valid: the budget is this server's, `workbench run` in a terminal may run it"
    status, body = server.request("POST", f"{API}/runs", {"ref": ref})
    assert status == 400, body
    message = body["message"]
    assert f"{ref}:{line}: datasets.cohort.vendor_only_people" in message and "'cohort'" in message
    assert "10,000,600 people" in message and "budget of 2,000,000 rows" in message and "PPML_WORKBENCH_MAX_ROWS" in message
    _, listing = server.request("GET", f"{API}/runs")
    assert not any(run["recipe"] == "slow" and run["status"] == "running" for run in listing["runs"])


def test_budgets_come_from_the_environment_when_the_config_does_not_set_them(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (WorkbenchLimits().max_concurrent_runs, WorkbenchLimits().memory_limit_gib, WorkbenchLimits().max_dataset_rows) == (2, 8.0, 2_000_000)
    monkeypatch.setenv("PPML_WORKBENCH_MAX_ROWS", "5e6")
    monkeypatch.setenv("PPML_WORKBENCH_MEMORY_GIB", "0.5")
    assert WorkbenchLimits().max_dataset_rows == 5_000_000 and WorkbenchLimits().memory_bytes == 2**29
    assert WorkbenchLimits(max_dataset_rows=7).max_dataset_rows == 7
    monkeypatch.setenv("PPML_WORKBENCH_MAX_RUNS", "two")
    with pytest.raises(ValueError, match="PPML_WORKBENCH_MAX_RUNS='two'"):
        _ = WorkbenchLimits().max_concurrent_runs


def test_a_run_over_the_memory_budget_fails_saying_so() -> None:
    with private_dir("memory") as root:
        (root / "big.recipe.yaml").write_text(SLOW_RECIPE.replace("vendor_only_people: 0", "vendor_only_people: 20000000"))
        workspace = Workspace(root)
        runs = RunManager(workspace, WorkbenchLimits(memory_limit_gib=1.5, max_dataset_rows=0))
        run_id = runs.start(workspace.recipe("workspace/big.recipe.yaml"))
        assert runs.wait(run_id, START_LIMIT_S) != 0
        summary = runs.summary(run_id)
    assert summary["status"] == "failed", summary
    assert summary["error"].startswith("memory budget of 1.5 GiB exceeded") and "memory_limit_gib" in summary["error"]


DEATHS = {
    "a Rust or C++ allocation failure aborts": ("import os, signal; os.kill(os.getpid(), signal.SIGABRT)", ""),
    "a C allocation failure crashes": ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", ""),
    "the kernel's OOM killer": ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", ""),
    "a MemoryError in Python": ("raise SystemExit(1)", "error: data: internal error (MemoryError); this is a bug\n"),
}


@pytest.mark.parametrize("death", DEATHS, ids=list(DEATHS))
def test_a_run_that_dies_of_memory_shows_the_budget_not_a_bug(death: str) -> None:
    code, log = DEATHS[death]
    with private_dir("deaths") as root:
        runs = RunManager(Workspace(root, package_dir=root), WorkbenchLimits(memory_limit_gib=4))
        run_id = "big-0123abcd-20250101-000000"
        (root / "runs" / LOGS).mkdir(parents=True)
        (root / "runs" / LOGS / f"{run_id}.log").write_text(log)
        runs._processes[run_id] = subprocess.Popen([sys.executable, "-c", code])
        runs.wait(run_id, 30)
        summary = runs.summary(run_id)
    assert summary["status"] == "failed" and summary["error"].startswith("memory budget of 4 GiB exceeded while loading data")


def test_an_ordinary_failure_keeps_its_own_message() -> None:
    with private_dir("failure") as root:
        runs = RunManager(Workspace(root, package_dir=root), WorkbenchLimits())
        run_id = "plain-0123abcd-20250101-000000"
        (root / "runs" / LOGS).mkdir(parents=True)
        (root / "runs" / LOGS / f"{run_id}.log").write_text("error: dataset 'cohort': data file x.csv does not exist\n")
        runs._processes[run_id] = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
        runs.wait(run_id, 30)
        summary = runs.summary(run_id)
    assert summary["status"] == "failed" and summary["error"] == "error: dataset 'cohort': data file x.csv does not exist"


def test_stopping_the_manager_stops_its_runs() -> None:
    """At server shutdown (atexit): runs in their own sessions would otherwise outlive the server and its cap."""
    with private_dir("shutdown") as root:
        runs = RunManager(Workspace(root, package_dir=root), WorkbenchLimits(cancel_grace_s=1))
        runs._processes["a"] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        runs.stop_all()
        assert runs._processes["a"].returncode == -signal.SIGTERM and runs.running() == []
