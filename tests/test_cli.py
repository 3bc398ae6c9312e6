"""The command line end to end: validate, schema, run, data generate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from tests.conftest import light_overrides
from tests.test_recipe import THREE_PROBLEMS
from workbench.cli import app
from workbench.recipe import Recipe

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


def test_run_with_overrides_writes_the_run_directory(flagship_path: Path, flagship: Recipe, tmp_path: Path) -> None:
    out = tmp_path / "run"
    light = [option for override in light_overrides(flagship) for option in ("--set", override)]
    result = runner.invoke(app, ["run", str(flagship_path), "--out", str(out), "--seed", "3",
                                 "--set", "steps[2].params.model.l2=0.1", *light])
    assert result.exit_code == 0, result.output
    assert "Held-out performance per site" in result.output and "general_hospital" in result.output
    as_run = (out / "recipe.yaml").read_text()
    assert "seed: 3" in as_run and "l2: 0.1" in as_run


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
    done = subprocess.run([str(command), "run", str(light_flagship_path), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "run directory" in done.stdout
    assert {"recipe.yaml", "manifest.json", "ledger.jsonl", "metrics.json", "report.html"} <= {p.name for p in (tmp_path / "run").iterdir()}
