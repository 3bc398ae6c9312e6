"""The lab's runs list finds a sweep's runs inside its folder and marks them, so the sidebar shows them as one group."""

from __future__ import annotations

import json

import pytest

from tests.conftest import uci_recipe
from tests.server.live import private_dir
from workbench.recipe import parse_recipe
from workbench.runner import run_recipe
from workbench.server.limits import WorkbenchLimits
from workbench.server.runs import RunManager
from workbench.server.workspace import Workspace
from workbench.sweep import Sweep, run_sweep

RECIPE = uci_recipe(
    "grouped",
    "  - {kind: local_train, params: {label: heart_disease, features: {numeric: [age, chol]}}}\n"
    "  - {kind: evaluate, params: {label: heart_disease, models: [local]}}\n",
)


def test_a_sweeps_runs_are_listed_by_sweep_and_label_beside_ordinary_runs() -> None:
    with private_dir("sweep-runs") as root:
        runs_dir = root / "runs"
        run_recipe(parse_recipe(RECIPE), runs_dir / "grouped-0123abcd-20250101-000000")
        sweep = run_sweep(RECIPE, Sweep("steps[local_train].params.model.l2", (0.1, 10)), runs_dir / "grouped-sweep-20250101-000001")
        manager = RunManager(Workspace(root, package_dir=root), WorkbenchLimits())
        listed = {summary["id"]: summary for summary in manager.summaries()}
        assert set(listed) == {"grouped-0123abcd-20250101-000000", "grouped-sweep-20250101-000001/l2=0.1", "grouped-sweep-20250101-000001/l2=10"}
        assert listed["grouped-0123abcd-20250101-000000"]["sweep"] is None
        for label in ("l2=0.1", "l2=10"):
            summary = listed[f"{sweep.out_dir.name}/{label}"]
            assert summary["status"] == "finished" and summary["report"] and summary["metrics"], summary
            assert summary["sweep"] == {"id": sweep.out_dir.name, "label": label, "path": "steps[local_train].params.model.l2"}
            assert manager.run_dir(f"{sweep.out_dir.name}/{label}") == (runs_dir / sweep.out_dir.name / label).resolve()


@pytest.mark.parametrize("run_id", ["grouped-sweep/../..", "plain/inner", "grouped-sweep/missing", "grouped-sweep/a/b"])
def test_only_a_sweeps_own_run_folders_are_runs_inside_it(run_id: str) -> None:
    with private_dir("sweep-ids") as root:
        for folder in ("runs/grouped-sweep/a/b", "runs/plain/inner"):
            (root / folder).mkdir(parents=True)
        (root / "runs" / "grouped-sweep" / "sweep.json").write_text("{}")
        manager = RunManager(Workspace(root, package_dir=root), WorkbenchLimits())
        with pytest.raises(FileNotFoundError):
            manager.run_dir(run_id)
        assert manager.run_dir("grouped-sweep/a") == (root / "runs" / "grouped-sweep" / "a").resolve()


def test_a_sweep_folder_itself_is_no_run() -> None:
    with private_dir("sweep-folder") as root:
        (root / "runs" / "s" / "v").mkdir(parents=True)
        (root / "runs" / "s" / "sweep.json").write_text("not json")
        ids = [summary["id"] for summary in RunManager(Workspace(root, package_dir=root), WorkbenchLimits()).summaries()]
    assert ids == ["s/v"]


def test_the_list_shows_when_a_run_started_and_sees_a_change_to_an_ended_run() -> None:
    with private_dir("runs-cache") as root:
        folder = root / "runs" / "grouped-0123abcd-20250101-000000-ab12cd34"
        run_recipe(parse_recipe(RECIPE), folder)
        manager = RunManager(Workspace(root, package_dir=root), WorkbenchLimits())
        (summary,) = manager.summaries()
        first_event = json.loads((folder / "events.jsonl").read_text().splitlines()[0])
        assert summary["status"] == "finished" and summary["started"] == first_event["started"]
        assert summary["recipe"] == "grouped"
        status = json.loads((folder / "status.json").read_text())
        (folder / "status.json").write_text(json.dumps(status | {"status": "running", "pid": 2**22 + 1}))
        (folder / "events.jsonl").write_text("\n".join((folder / "events.jsonl").read_text().splitlines()[:-1]) + "\n")  # no run_finished
        (summary,) = manager.summaries()
        assert summary["status"] == "interrupted" and "is gone" in summary["error"], "a changed run is read again, and a dead one is not running"
