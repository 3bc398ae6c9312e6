"""The command line end to end: validate, schema, run, data generate."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tests.conftest import RECIPES, light_overrides, uci_recipe
from tests.test_recipe import THREE_PROBLEMS
from workbench.cli import app
from workbench.data.cohort import CohortParams, generate_cohort
from workbench.recipe import Recipe
from workbench.scratch import PREFIX

runner = CliRunner()


def test_validate_accepts_the_shipped_recipes(flagship_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(flagship_path), str(flagship_path.parent / "uci_heart.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 2


def test_validate_names_every_problem_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(THREE_PROBLEMS)
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    for expected in (f"{bad}:9: steps[0].colour", f"{bad}:12: steps[1].params.model.l2", f"{bad}:15: steps[1].at[1]"):
        assert expected in result.output
    assert "Traceback" not in result.output


def test_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Recipe" and "steps" in schema["required"]


@pytest.mark.slow
def test_run_with_overrides_writes_the_run_directory_and_a_line_a_step(flagship_path: Path, flagship: Recipe, tmp_path: Path) -> None:
    out = tmp_path / "run"
    light = [option for override in light_overrides(flagship) for option in ("--set", override)]
    arguments = ["run", str(flagship_path), "--out", str(out), "--seed", "3", "--set", "steps[2].params.model.l2=0.1", *light]
    result = runner.invoke(app, arguments, terminal_width=80)
    assert result.exit_code == 0, result.output
    summary = result.output[result.output.index(f"{flagship.name} · hash") :]
    assert all(len(line) <= 80 for line in summary.splitlines()), "reads in an 80-column CI log"
    for name in flagship.step_names():
        assert re.search(rf"^{name} +\d+\.\d s +\S", summary, re.MULTILINE), name
    assert re.search(r"evaluate .*mean AUC over 3 sites: federated 0\.\d{3}", summary) and "…" not in summary
    as_run = (out / "recipe.yaml").read_text()
    assert "seed: 3" in as_run and "l2: 0.1" in as_run


def test_run_json_prints_the_summary_as_data(tmp_path: Path) -> None:
    recipe = tmp_path / "uci.yaml"
    recipe.write_text(uci_recipe("uci", "  - {kind: local_train, params: {label: heart_disease, features: {numeric: [age, chol]}}}\n"))
    result = subprocess.run([sys.executable, "-m", "workbench", "run", str(recipe), "--out", str(tmp_path / "run"), "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [step["name"] for step in summary["steps"]] == ["split", "local_train"]
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"]["local_train"]
    assert summary["steps"][1]["headline"] == f"a model at each of 2 parties, on {sum(s['train_rows'] for s in trained.values())} rows in all"
    assert summary["ledger"]["row_level_messages"] == 0 and summary["out_dir"] == str(tmp_path / "run")


def test_run_of_a_bad_recipe_prints_problems_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(THREE_PROBLEMS)
    result = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "steps[1].params.model.l2" in result.output
    assert not (tmp_path / "run").exists()


def test_data_generate_keeps_ground_truth_apart(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "generate", "--out", str(tmp_path), "--seed", "2"])
    assert result.exit_code == 0, result.output
    parts = {p.stem: pl.read_parquet(p) for p in tmp_path.glob("*.parquet")}
    assert set(parts) == {"general_hospital", "county_hospital", "trauma_center", "vendor"}
    assert (tmp_path / "ground_truth").is_dir()
    assert not any("person_key" in frame.columns for name, frame in parts.items() if name != "vendor")


def test_installed_command_runs_the_flagship(light_flagship_path: Path, tmp_path: Path) -> None:
    """The real entry point in a fresh process, as a user or CI would call it."""
    command = Path(sys.executable).with_name("workbench")
    done = subprocess.run([str(command), "run", str(light_flagship_path), "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "run directory" in done.stdout
    assert {"recipe.yaml", "manifest.json", "ledger.jsonl", "metrics.json", "report.html"} <= {p.name for p in (tmp_path / "run").iterdir()}


LONG_TRAINING = uci_recipe(
    "long_training",
    """\
  - kind: fl_train
    params: {label: heart_disease, features: {numeric: [age, chol]}, rounds: 10000}
""",
)


def _start_training(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, dict[str, str]]:
    """`workbench run` of a long federated training, returned once its rounds are under way (private files on disk)."""
    (tmp_path / "recipe.yaml").write_text(LONG_TRAINING)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "run", str(tmp_path / "recipe.yaml"), "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = (out / "events.jsonl").read_text() if (out / "events.jsonl").exists() else ""
        if '"type": "progress", "step": "fl_train"' in events:
            assert list(scratch.glob(f"{PREFIX}*")), "a site's rows are in a private folder while it trains"
            return process, out, env
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"training did not start: {process.communicate()}")


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    direct = [int(c) for c in children.read_text().split()] if children.exists() else []
    return direct + [d for c in direct for d in _descendants(c)]


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_leaves_no_private_file(tmp_path: Path) -> None:
    process, out, env = _start_training(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr.decode() and "Traceback" not in stderr.decode()
    assert json.loads((out / "status.json").read_text()) | {"pid": 0} == {"status": "interrupted", "step": "fl_train", "pid": 0}
    assert not list(Path(env["TMPDIR"]).iterdir()), "the site files went with the run"


@pytest.mark.slow
def test_after_sigkill_the_next_run_sweeps_what_the_killed_one_left(tmp_path: Path) -> None:
    process, out, env = _start_training(tmp_path)
    children = _descendants(process.pid)
    process.kill()
    process.wait()
    time.sleep(0.5)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "no child outlives a killed run"
    left = list(Path(env["TMPDIR"]).glob(f"{PREFIX}*"))
    assert left, "SIGKILL gives no chance to clean up"
    (tmp_path / "short.yaml").write_text(LONG_TRAINING.replace("rounds: 10000", "rounds: 1"))
    again = subprocess.run(
        [sys.executable, "-m", "workbench", "run", str(tmp_path / "short.yaml"), "--out", str(tmp_path / "again")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "removed 1 private temporary folder(s) that killed runs left behind" in " ".join(again.stdout.split())
    assert not any(path.exists() for path in left)
    listed = {run["run"]: run for run in json.loads(runner.invoke(app, ["runs", str(tmp_path), "--json"]).output)}
    assert listed["run"]["status"] == "interrupted" and listed["run"]["current"] == "fl_train", "killed without a last word: never running forever"
    assert "is gone without a last word" in listed["run"]["error"]
    assert listed["again"]["status"] == "finished"


@pytest.mark.slow
def test_a_full_disk_prints_no_patient_data(tmp_path: Path) -> None:
    """Issue 21: when even error.log cannot be written, the stack goes to stderr without local variables or rows."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(disk)], check=True)
    try:
        recipe = tmp_path / "linkage.yaml"
        recipe.write_text((RECIPES / "flagship.yaml").read_text())
        result = subprocess.run(
            [sys.executable, "-m", "workbench", "run", str(recipe), "--out", str(disk / "run"), "--set", "datasets.cohort.vendor_only_people=200"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert result.returncode == 1
    assert "No space left on device" in result.stderr and "this is a bug" in result.stderr
    tables = generate_cohort(CohortParams(vendor_only_people=200), 7).parts
    identifiers = {
        str(value)
        for party, column in (("general_hospital", "phone"), ("general_hospital", "patient_id"), ("vendor", "phone"))
        for value in tables[party][column].to_list()
    }
    printed = result.stdout + result.stderr
    assert not [value for value in identifiers if value in printed]
    assert "locals" not in printed.lower()


def test_a_run_directory_that_cannot_be_one_is_refused(tmp_path: Path, flagship_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    for out, message in (
        (tmp_path / "file", "is a file, not a folder"),
        (tmp_path / "file" / "run", "is a file, not a folder"),
        (tmp_path / "other", "already exists and is not empty"),
    ):
        result = runner.invoke(app, ["run", str(flagship_path), "--out", str(out)])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    result = runner.invoke(app, ["run", str(flagship_path), "--out", str(tmp_path / "other"), "--force"])
    assert result.exit_code == 2 and "not a run directory, and --force will not empty it" in " ".join(result.output.split())
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_force_over_an_earlier_run_leaves_none_of_its_files(tmp_path: Path) -> None:
    """Issue 10: a failed forced run left the new recipe.yaml beside the old metrics.json and report.html."""
    good, out = tmp_path / "good.yaml", tmp_path / "run"
    good.write_text(LONG_TRAINING.replace("rounds: 10000", "rounds: 1"))
    assert runner.invoke(app, ["run", str(good), "--out", str(out)]).exit_code == 0
    bad = Path(__file__).parent / "corpus" / "recipes" / "nan_features.yaml"  # fails at run time, on its data
    result = runner.invoke(app, ["run", str(bad), "--out", str(out), "--force"])
    assert result.exit_code == 2
    assert not (out / "metrics.json").exists() and not (out / "report.html").exists()
    assert json.loads((out / "status.json").read_text())["status"] == "failed"
