"""Recipe -> notebook and notebook -> recipe, and running such a notebook headless.

A recipe becomes a notebook a researcher can read and change: a title with the
parties, a papermill `parameters` cell (seed, run directory), a cell holding
the recipe's header (datasets and parties) and one section per step, each
with the step's own documentation and a cell holding its YAML. The cells call
`workbench.widgets.RecipeSession`, so running the notebook validates each step
as it goes and runs the recipe with live widgets.

Exporting reads the same cells back. The YAML lives in string literals read
with `ast` (the notebook is never executed to export it), so the round trip is
exact: export(notebook(recipe)) has the recipe's hash.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
import yaml
from nbformat import NotebookNode

from workbench import safe_yaml
from workbench.errors import WorkbenchError
from workbench.recipe import Problem, Recipe, RecipeError, StepSpec, parse_recipe
from workbench.steps import REGISTRY

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
"""The tag papermill gives the cell it inserts after `parameters`; ours does the same."""
HEADER_TAG = "workbench-recipe"
STEP_TAG = "workbench-step"
RUN_TAG = "workbench-run"
HEADER_CALL = "from_yaml"
STEP_CALL = "step"
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


class NotebookError(WorkbenchError, ValueError):
    """A notebook is not a workbench notebook, or one of its cells cannot be read back; names the file and cell."""


# --- recipe -> notebook ---------------------------------------------------------------------------


def recipe_to_notebook(recipe: Recipe, *, base_dir: str = ".", source: str | None = None) -> NotebookNode:
    """The notebook for `recipe`; `base_dir` is where its data files are, relative to the notebook's folder."""
    cells = [
        nbformat.v4.new_markdown_cell(_title(recipe, source)),
        _code(
            f"# Parameters: papermill or the workbench may override these.\nseed = {recipe.seed!r}\n"
            "out_dir = None  # None: runs/NAME-HASH-TIME-RANDOM beside the notebook",
            PARAMETERS_TAG,
        ),
        nbformat.v4.new_markdown_cell(
            "## The parties and their data\n\nEach party keeps its private store; only what the steps send through the ledger leaves it."
        ),
        _code(_header_source(recipe, base_dir), HEADER_TAG),
    ]
    for index, (name, spec) in enumerate(zip(recipe.step_names(), recipe.steps), start=1):
        cells.append(nbformat.v4.new_markdown_cell(_step_text(recipe, index, name, spec)))
        cells.append(_code(f"wb.{STEP_CALL}({name!r}, {_literal(_step_yaml(spec))})", STEP_TAG))
    cells += [
        nbformat.v4.new_markdown_cell(
            "## Run\n\nRuns every step in order and writes the run directory (recipe, manifest, ledger, metrics, "
            "report). The monitor shows each step's progress and, for federated steps, the curves per round."
        ),
        _code("run = wb.run(out_dir)", RUN_TAG),
        nbformat.v4.new_markdown_cell("## Results\n\nPer-site scores of each model, and every message that crossed a party boundary, by protection."),
        _code("wb.results(run)"),
    ]
    notebook: NotebookNode = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = KERNEL
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata["workbench"] = {"recipe": recipe.name, "recipe_hash": recipe.hash()}
    return notebook


def write_recipe_notebook(recipe: Recipe, recipe_path: Path | None, out: Path) -> Path:
    """Write the notebook for a recipe to `out`, pointing its data paths at the recipe's folder."""
    base = os.path.relpath(recipe_path.parent.resolve(), out.parent.resolve()) if recipe_path else "."
    notebook = recipe_to_notebook(recipe, base_dir=Path(base).as_posix(), source=str(recipe_path) if recipe_path else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(out))
    return out


def _code(source: str, *tags: str) -> NotebookNode:
    cell: NotebookNode = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _literal(text: str) -> str:
    """A triple-quoted Python literal holding `text` exactly (YAML from safe_dump has no triple quotes or backslashes)."""
    if '"""' in text or "\\" in text:
        return repr(text)
    return f'"""\n{text}"""'


def _header_source(recipe: Recipe, base_dir: str) -> str:
    header = recipe.model_dump(mode="json", exclude={"steps", "seed"}, exclude_unset=True)
    yaml_text = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return f"from workbench.widgets import RecipeSession\n\nwb = RecipeSession.{HEADER_CALL}({_literal(yaml_text)}, seed=seed, base_dir={base_dir!r})\nwb"


def _step_yaml(spec: StepSpec) -> str:
    """The step as its author wrote it (defaults stay implicit; the section's table lists every parameter)."""
    data: dict[str, Any] = {"kind": spec.kind}
    if spec.name is not None:
        data["name"] = spec.name
    if spec.at is not None:
        data["at"] = list(spec.at)
    data["params"] = spec.params.model_dump(mode="json", exclude_unset=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _title(recipe: Recipe, source: str | None) -> str:
    lines = [f"# {recipe.name}", ""]
    if recipe.description:
        lines += [recipe.description, ""]
    lines += ["| party | role | data | |", "| --- | --- | --- | --- |"]
    for name, party in recipe.parties.items():
        data = f"{party.data.dataset}/{party.data.part or ''} as `{party.data.table}`" if party.data else "—"
        lines.append(f"| **{name}** | {party.role.value} | {data} | {party.description} |")
    chain = " → ".join(f"`{spec.kind}`" for spec in recipe.steps)
    lines += ["", f"**Steps:** {chain}", ""]
    if source:
        lines.append(f"Written from `{Path(source).name}` by `workbench export`; export it back with `workbench export THIS.ipynb -o RECIPE.yaml`.")
    return "\n".join(lines)


def _step_text(recipe: Recipe, index: int, name: str, spec: StepSpec) -> str:
    step = REGISTRY[spec.kind]
    doc = " ".join((step.__doc__ or "").split())
    at = ", ".join(recipe.step_parties(spec)) or "—"
    title = f"## {index}. `{spec.kind}`" + (f" — {name}" if name != spec.kind else "")
    lines = [title, "", doc, "", f"Runs at: {at}", ""]
    fields = step.Params.model_json_schema().get("properties", {})
    if fields:
        lines += ["| parameter | meaning |", "| --- | --- |"]
        lines += [f"| `{field}` | {info.get('description', '')} |" for field, info in fields.items()]
    return "\n".join(lines)


# --- notebook -> recipe ---------------------------------------------------------------------------


def notebook_to_recipe(notebook: NotebookNode, source: str = "<notebook>") -> Recipe:
    """Read the recipe a workbench notebook describes; the seed comes from its parameters (papermill's, if injected)."""
    cells = _code_cells(notebook)
    for number, cell in cells:
        _check_tags(cell, source, number)
    headers = [(n, cell) for n, cell in cells if HEADER_TAG in _tags(cell)]
    if len(headers) != 1:
        raise NotebookError(f"{source}: expected one cell tagged {HEADER_TAG!r} (the recipe's parties and datasets), found {len(headers)}")
    if not any(PARAMETERS_TAG in _tags(cell) for _, cell in cells):
        raise NotebookError(
            f"{source}: no cell is tagged {PARAMETERS_TAG!r}, so the seed the notebook ran with is unknown; tag the cell "
            "that sets `seed` (papermill's parameters cell) instead of exporting default values"
        )
    parameters = _parameters(notebook, source)
    header_number, header_cell = headers[0]
    raw = _yaml_mapping(_call_argument(header_cell, HEADER_CALL, 0, source, header_number), source, header_number)
    if "seed" in parameters:
        raw["seed"] = parameters["seed"]
    steps, step_cells = [], []
    for number, cell in cells:
        if STEP_TAG in _tags(cell):
            steps.append(_yaml_mapping(_call_argument(cell, STEP_CALL, 1, source, number), source, number))
            step_cells.append(number)
        elif f".{STEP_CALL}(" in cell.source:
            raise NotebookError(
                f"{source}: cell {number} calls .{STEP_CALL}() but is not tagged {STEP_TAG!r}; tag it, or its step would be left out of the recipe"
            )
    raw["steps"] = steps
    try:
        return parse_recipe(yaml.safe_dump(raw, sort_keys=False), source)
    except RecipeError as error:
        raise RecipeError(source, [_in_cell(problem, header_number, step_cells) for problem in error.problems]) from None


def read_notebook_recipe(path: Path) -> Recipe:
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except (OSError, ValueError) as error:
        raise NotebookError(f"{path}: cannot read the notebook: {error}") from None
    return notebook_to_recipe(notebook, str(path))


def _in_cell(problem: Problem, header_cell: int, step_cells: list[int]) -> Problem:
    """Point a problem at the notebook cell that holds it: YAML lines of the composed recipe mean nothing here."""
    loc = problem.loc
    cell = step_cells[loc[1]] if len(loc) > 1 and loc[0] == "steps" and isinstance(loc[1], int) and loc[1] < len(step_cells) else header_cell
    return Problem(loc, f"{problem.message} (cell {cell})", None)


def _code_cells(notebook: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """Code cells with their 1-based position among all cells, as a person counts them."""
    return [(n, cell) for n, cell in enumerate(notebook.cells, start=1) if cell.cell_type == "code"]


def _tags(cell: NotebookNode) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def _check_tags(cell: NotebookNode, source: str, number: int) -> None:
    """Tags are a list of strings; anything else (a bare string, a number) would silently drop the cell from the recipe."""
    tags = cell.get("metadata", {}).get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise NotebookError(f'{source}: cell {number}: metadata.tags must be a list of strings, got {type(tags).__name__}; write it as ["{STEP_TAG}"]')


def _parameters(notebook: NotebookNode, source: str) -> dict[str, Any]:
    """Literal assignments of the parameters cell, then of papermill's injected cell (which win)."""
    values: dict[str, Any] = {}
    for tag in (PARAMETERS_TAG, INJECTED_TAG):
        for number, cell in _code_cells(notebook):
            if tag in _tags(cell):
                values.update(_literal_assignments(cell.source, source, number))
    return values


def _literal_assignments(code: str, source: str, number: int) -> dict[str, Any]:
    values = {}
    for node in _parse(code, source, number).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # a computed parameter; the recipe needs only literal ones
    return values


def _call_argument(cell: NotebookNode, method: str, position: int, source: str, number: int) -> str:
    for node in ast.walk(_parse(cell.source, source, number)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method and len(node.args) > position:
            argument = node.args[position]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                return argument.value
            raise NotebookError(f"{source}: cell {number}: the YAML passed to .{method}() must be a string literal to be exported")
    shape = 'wb.step("name", """YAML""")' if method == STEP_CALL else 'RecipeSession.from_yaml("""YAML""", ...)'
    raise NotebookError(f"{source}: cell {number} is tagged as a workbench cell but holds no {shape} call")


def _parse(code: str, source: str, number: int) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as error:
        raise NotebookError(f"{source}: cell {number} is not valid Python (line {error.lineno}): {error.msg}") from None


def _yaml_mapping(text: str, source: str, number: int) -> dict[str, Any]:
    try:
        value = safe_yaml.load(text, f"cell {number}")
    except safe_yaml.YamlError as error:
        raise NotebookError(f"{source}: cell {number}: {error}") from None
    if not isinstance(value, dict):
        raise NotebookError(f"{source}: cell {number}: expected a YAML mapping, got {type(value).__name__}")
    return value


# --- running headless -----------------------------------------------------------------------------


def inject_parameters(notebook: NotebookNode, parameters: Mapping[str, Any]) -> NotebookNode:
    """Insert papermill's kind of `injected-parameters` cell after the `parameters` cell (or first)."""
    lines = ["# Injected parameters"] + [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = _code("\n".join(lines), INJECTED_TAG)
    position = next((i + 1 for i, c in enumerate(notebook.cells) if PARAMETERS_TAG in _tags(c)), 0)
    notebook.cells.insert(position, cell)
    return notebook


def execute_notebook(
    path: Path, parameters: Mapping[str, Any] | None = None, *, cwd: Path | None = None, timeout: int = 600, output: Path | None = None
) -> NotebookNode:
    """Run a notebook top to bottom in a fresh kernel (nbclient), as papermill would; raise on the first failing cell."""
    from nbclient import NotebookClient

    notebook: NotebookNode = nbformat.read(str(path), as_version=4)
    if parameters:
        inject_parameters(notebook, parameters)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd or path.parent)}})
    client.execute()
    if output is not None:
        nbformat.write(notebook, str(output))
    return notebook
