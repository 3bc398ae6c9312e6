"""Hostile and mistaken inputs, as users send them: every one a clear message, exit code 2, no traceback, nothing half-written.

Each file in tests/corpus/recipes/ starts with `# expect: REGEX`, the message it must get from `workbench run`; the data
files they point at are in tests/corpus/data/. Adding a case is adding a file. benchmarks/hostile_inputs.py times them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted((CORPUS / "recipes").glob("*.yaml"))


def expectation(recipe: Path) -> str:
    first = recipe.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{recipe.name} must start with '# expect: REGEX'"
    return first.removeprefix("# expect: ")


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("recipe", CASES, ids=[case.stem for case in CASES])
def test_a_bad_input_gets_a_clear_error_and_leaves_nothing_half_written(recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    text = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2, result.output
    assert re.search(expectation(recipe), text), text
    assert recipe.name in text or "data file" in text or re.search(r"party '\w+', table '\w+'", text), "names recipe, file or party and table"
    assert "Traceback" not in text and (result.exception is None or isinstance(result.exception, SystemExit))
    assert not (out / "metrics.json").exists() and not (out / "report.html").exists()


def test_a_data_file_that_is_a_link_out_of_its_folder_is_refused(tmp_path: Path) -> None:
    """Issue 10: a symlink to a system file was read and its first line printed."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "site.csv").symlink_to("/etc/passwd")
    recipe = tmp_path / "linked.yaml"
    recipe.write_text((CORPUS / "recipes" / "missing_file.yaml").read_text().replace("../data/nowhere.csv", "data/site.csv"))
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "leads through a symbolic link to /etc/passwd" in " ".join(result.output.split())
    assert "root:x:0" not in result.output, "not a line of the file it points at"
