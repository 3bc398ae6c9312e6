"""Recipe <-> notebook round trip, headless execution equal to `workbench run`, and the tutorials."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from tests.reproducibility import assert_same_ledger, assert_same_metrics
from workbench.cli import app
from workbench.notebook import (
    HEADER_TAG,
    INJECTED_TAG,
    PARAMETERS_TAG,
    STEP_TAG,
    NotebookError,
    execute_notebook,
    inject_parameters,
    notebook_to_recipe,
    recipe_to_notebook,
    write_recipe_notebook,
)
from workbench.recipe import Recipe, RecipeError, load_recipe
from workbench.runner import RunResult

ROOT = Path(__file__).resolve().parents[1]
RECIPE_FILES = sorted((ROOT / "recipes").glob("*.yaml"))
TUTORIALS = sorted((ROOT / "notebooks").glob("*.ipynb"))
UNAUDITED = {"vertical"}
"""Tutorials whose recipe runs no membership audit (the vertical model is scored on held-out rows only)."""


def _tags(notebook: nbformat.NotebookNode) -> list[list[str]]:
    return [cell.metadata.get("tags", []) for cell in notebook.cells]


@pytest.mark.parametrize("path", RECIPE_FILES, ids=[p.stem for p in RECIPE_FILES])
def test_every_shipped_recipe_round_trips_through_a_notebook_with_the_same_hash(path: Path) -> None:
    recipe = load_recipe(path)
    notebook = recipe_to_notebook(recipe)
    nbformat.validate(notebook)
    assert sum(PARAMETERS_TAG in tags for tags in _tags(notebook)) == 1
    assert sum(STEP_TAG in tags for tags in _tags(notebook)) == len(recipe.steps)
    assert notebook_to_recipe(notebook).hash() == recipe.hash()


def test_each_step_has_its_own_section_with_its_documentation(flagship) -> None:
    notebook = recipe_to_notebook(flagship)
    headings = [cell.source.splitlines()[0] for cell in notebook.cells if cell.cell_type == "markdown" and cell.source.startswith("## ")]
    for index, spec in enumerate(flagship.steps, start=1):
        assert any(h.startswith(f"## {index}. `{spec.kind}`") for h in headings), headings


def test_the_cli_exports_both_ways(tmp_path: Path, flagship_path: Path, flagship) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(flagship_path), "-o", str(tmp_path / "nb" / "flagship.ipynb")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(tmp_path / "nb" / "flagship.ipynb"), "-o", str(tmp_path / "back.yaml")])
    assert result.exit_code == 0, result.output
    assert load_recipe(tmp_path / "back.yaml").hash() == flagship.hash()


def test_an_injected_seed_is_the_exported_recipes_seed(flagship) -> None:
    notebook = inject_parameters(recipe_to_notebook(flagship), {"seed": flagship.seed + 5})
    assert INJECTED_TAG in _tags(notebook)[2]
    assert notebook_to_recipe(notebook).seed == flagship.seed + 5


def test_a_step_cell_that_is_no_longer_a_literal_is_named(flagship) -> None:
    notebook = recipe_to_notebook(flagship)
    step_cell = next(n for n, cell in enumerate(notebook.cells, start=1) if STEP_TAG in cell.metadata.get("tags", []))
    notebook.cells[step_cell - 1].source = "wb.step('split', make_yaml())"
    with pytest.raises(NotebookError, match=f"demo.ipynb: cell {step_cell}: .*string literal"):
        notebook_to_recipe(notebook, "demo.ipynb")


def test_a_bad_value_in_a_step_cell_is_reported_with_its_cell_and_path(flagship) -> None:
    notebook = recipe_to_notebook(flagship)
    step_cells = [(n, c) for n, c in enumerate(notebook.cells, start=1) if STEP_TAG in c.metadata.get("tags", [])]
    index, (number, cell) = next((i, nc) for i, nc in enumerate(step_cells) if "test_fraction: 0.3" in nc[1].source)
    cell.source = cell.source.replace("test_fraction: 0.3", "test_fraction: 3")
    with pytest.raises(RecipeError) as caught:
        notebook_to_recipe(notebook, "demo.ipynb")
    problem = caught.value.problems[0]
    assert problem.path == f"steps[{index}].params.test_fraction" and f"(cell {number})" in problem.message


def test_a_notebook_without_a_recipe_cell_is_refused_by_name() -> None:
    with pytest.raises(NotebookError, match=f"plain.ipynb: expected one cell tagged '{HEADER_TAG}'"):
        notebook_to_recipe(nbformat.v4.new_notebook(), "plain.ipynb")


def test_the_notebook_run_headless_writes_the_same_run_directory_as_workbench_run(
    tmp_path: Path, light_flagship_path: Path, light_flagship: Recipe, light_flagship_run: RunResult
) -> None:
    cli_out = light_flagship_run.out_dir  # run_recipe, as `workbench run` calls it (tests/test_cli.py runs the command itself)
    notebook_path = write_recipe_notebook(light_flagship, light_flagship_path, tmp_path / "nb" / "flagship.ipynb")
    executed = execute_notebook(notebook_path, {"out_dir": "nb-run"})
    nb_out = tmp_path / "nb" / "nb-run"
    assert sorted(p.name for p in nb_out.iterdir()) == sorted(p.name for p in cli_out.iterdir())
    assert (nb_out / "recipe.yaml").read_bytes() == (cli_out / "recipe.yaml").read_bytes()
    assert_same_metrics(nb_out / "metrics.json", cli_out / "metrics.json", light_flagship)
    assert_same_ledger(nb_out / "ledger.jsonl", cli_out / "ledger.jsonl", light_flagship)
    outputs = [o for cell in executed.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    widget_views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widget_views) >= 2, "the run cell shows the monitor and the results cell the views"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_top_to_bottom(path: Path, tmp_path: Path, light_flagship_path: Path) -> None:
    """The flagship tutorial runs on the light flagship (fewer rounds and vendor-only people): the same chain and words."""
    parameters = {"out_dir": str(tmp_path / "run"), **({"recipe_path": str(light_flagship_path)} if path.stem == "flagship" else {})}
    executed = execute_notebook(path, parameters, output=tmp_path / f"executed-{path.name}")
    assert not [o for cell in executed.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert (tmp_path / "run" / "report.html").is_file()
    printed = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []) if o.output_type == "stream")
    nonmembers = [int(n) for n in re.findall(r"highest attack AUC .*; (\d+) non-members", printed)]
    assert nonmembers or path.stem in UNAUDITED, "the audit section printed a verdict per site"
    if path.stem == "flagship":  # its words: each hospital "spends the budget and no more"
        spent = [(float(e), float(b)) for e, b in re.findall(r": epsilon (\d+\.\d+) of budget (\d+(?:\.\d+)?) ", printed)]
        assert len(spent) == 3 and all(0.99 * budget < epsilon <= budget for epsilon, budget in spent), spent
        differences = [float(d) for d in re.findall(r"largest parameter difference from plain FedAvg (\S+)", printed)]
        assert len(differences) == 3 and all(0 < d < 1e-4 for d in differences), "its words: far below 1e-4, not exact"
        assert "Shamir-shared among 3 sites with threshold 2" in printed, "its words: the trust model for three hospitals"
        number = r"(-?\d+\.\d+)"
        line = rf"(\w+) \((\d+) held out, (\d+) deaths\): \S+ AUC \S+ \[{number}, {number}\] .*; difference \S+ \[{number}, {number}\], p \S+: ([a-z ]+)"
        compared = re.findall(line, printed)
        assert len(compared) == 5, "its words: federated at every hospital, the large hospital's model at the two others"
        for site, n, deaths, low, high, d_low, d_high, said in compared:
            expected = "gain" if float(d_low) > 0 else "loss" if float(d_high) < 0 else "no difference shown"
            assert said == expected, "its words: a gain only where the paired interval excludes zero"
            if site == "trauma_center":
                assert (n, deaths) == ("120", "6") and float(high) - float(low) > 0.2, "its words: 6 of 120 died, intervals wider than 0.2"
        assert "sent 2 model(s): general_hospital -> county_hospital, general_hospital -> trauma_center" in printed
        scored = re.search(rf"AUC {number} \(the plaintext model on the same rows: {number}\); largest logit difference (\S+)", printed)
        assert scored and abs(float(scored[1]) - float(scored[2])) <= 1e-4 and float(scored[3]) <= 1e-4, "its words: within the precision, every row"
        crossed = re.findall(r"  rural_clinic -> general_hospital: (\S+) \((\w+)|  general_hospital -> rural_clinic: (\S+) \((\w+)", printed)
        assert [(a or c, b or d) for a, b, c, d in crossed] == [
            ("inference.context", "none"),
            ("inference.rows", "none"),
            ("inference.query", "ckks"),
            ("inference.reply", "ckks"),
        ], "its words: everything that crossed, the weights never"
        assert "this querier can recover the model" in printed, "its words: a budget that large lets the clinic rebuild the model"
    if path.stem == "synthetic":  # its words: counts only masked, the tree and table dp, about half on either side
        assert "hospitals sent: keys (none), masked (masked), shares (encrypted), unmask-shares (none)" in printed
        assert "synthesize.table (dp)" in printed and "synthesize.tree (dp)" in printed
        shares = [float(share) for share in re.findall(r": (\d\.\d+) of synthetic rows closer to a training row", printed)]
        assert len(shares) == 3 and all(0.35 < share < 0.65 for share in shares), shares
    if path.stem == "vertical":  # its words: only link ids in the clear, ciphertexts for every row, the same AUC within a few thousandths
        sent = dict(re.findall(r"^(link|vfl_ckks): (.*)$", printed, re.MULTILINE))
        assert "psi.confirm (none, row-level)" in sent["link"] and "(none, row-level)" not in sent["link"].replace("psi.confirm (none, row-level)", "")
        assert re.fullmatch(r"vfl\.layout \(none\) x\d+(, vfl\.\w+ \(ckks, row-level\) x\d+)+", sent["vfl_ckks"]), sent["vfl_ckks"]
        assert re.search(r"'linked' tables: \d+ matched patients, with the vendor's 4 vitals columns", printed)
        assert re.search(r"'aligned' tables: \d+ matched patients, with no vitals column", printed)
        number = r"(-?\d+\.\d+)"
        compared = re.findall(rf"(\w+) \(\d+ held out\): payload variant AUC {number}, vertical AUC {number}; difference \S+ \[{number}, {number}\]", printed)
        assert len(compared) == 3, printed
        for site, payload, vertical, low, high in compared:
            assert abs(float(payload) - float(vertical)) <= 0.005, f"issue 13's target at {site}"
            assert float(low) <= 0 <= float(high), "its words: the paired interval includes zero"
        behind = dict(re.findall(r"(\w+) (\d+)", printed.split("rows of the vendor's data at the hospitals behind each model: ")[1].splitlines()[0]))
        assert int(behind["fl_payload"]) > 0 and behind["vfl_plain"] == behind["vfl_ckks"] == "0", behind
        gap = re.search(r"between the CKKS and the clear vertical model: (\S+)", printed)
        assert gap and float(gap[1]) <= 1e-3, "its words: they agree to CKKS precision"
    if path.stem == "intro":  # its words: "every one has fewer than 100 non-members to test against"
        assert len(nonmembers) == 4 and max(nonmembers) < 100, nonmembers
        assert "row-level data" in printed and "oracle" in printed, "its words: the boundary statement names the oracle's rows"
        sweep = json.loads((tmp_path / "run-sweep" / "sweep.json").read_text())
        assert [v["status"] for v in sweep["variants"]] == ["finished", "finished"], "its words: the recipe at l2 0.05 and 100"
        reviews = re.findall(r"(\w+) reviews 2 steps; row-level flows: (\d+);", printed)
        assert [site for site, _ in reviews] == ["cleveland", "hungary", "switzerland", "va_long_beach"] and {n for _, n in reviews} == {"0"}
        assert "Data access: every data owner approved this recipe's hash: cleveland (key" in printed, "its words: the run goes ahead"
        assert re.search(r"audit trails: \d+ entries checked, 0 problems", printed), "its words: its trails verify"
        assert "refused: no data was read: party 'cleveland' has not approved recipe 'uci_heart' as run" in printed, "its words: the changed seed is refused"


def test_there_are_tutorials() -> None:
    assert {p.stem for p in TUTORIALS} >= {"flagship", "intro", "synthetic", "vertical"}


def test_a_notebook_without_its_parameters_cell_is_refused_not_exported_with_defaults(flagship) -> None:
    """Issue 10: without the parameters cell the export silently used the default seed (0 instead of 3)."""
    notebook = recipe_to_notebook(flagship)
    for cell in notebook.cells:
        cell.metadata["tags"] = [tag for tag in cell.metadata.get("tags", []) if tag != PARAMETERS_TAG]
    with pytest.raises(NotebookError, match=f"demo.ipynb: no cell is tagged '{PARAMETERS_TAG}'"):
        notebook_to_recipe(notebook, "demo.ipynb")


def test_malformed_tags_and_untagged_steps_are_refused_by_cell(flagship) -> None:
    notebook = recipe_to_notebook(flagship)
    number = next(n for n, cell in enumerate(notebook.cells, start=1) if STEP_TAG in cell.metadata.get("tags", []))
    notebook.cells[number - 1].metadata["tags"] = STEP_TAG  # a string, not a list: the step would vanish
    with pytest.raises(NotebookError, match=f"demo.ipynb: cell {number}: metadata.tags must be a list of strings"):
        notebook_to_recipe(notebook, "demo.ipynb")
    notebook.cells[number - 1].metadata["tags"] = []
    with pytest.raises(NotebookError, match=f"demo.ipynb: cell {number} calls .step\\(\\) but is not tagged"):
        notebook_to_recipe(notebook, "demo.ipynb")


def test_export_never_overwrites_without_force(tmp_path: Path, flagship_path: Path) -> None:
    runner = CliRunner()
    existing = tmp_path / "mine.ipynb"
    existing.write_text("precious")
    result = runner.invoke(app, ["export", str(flagship_path), "-o", str(existing)])
    assert result.exit_code == 2 and "exists; choose another --out or pass --force" in result.output and existing.read_text() == "precious"
    result = runner.invoke(app, ["export", str(flagship_path), "-o", str(flagship_path), "--force"])
    assert result.exit_code == 2 and "is the file being exported" in result.output
    assert runner.invoke(app, ["export", str(flagship_path), "-o", str(existing), "--force"]).exit_code == 0
