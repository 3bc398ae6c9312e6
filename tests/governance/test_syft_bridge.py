"""Approval through the owner's own PySyft datasite: syft holds the request pending, the owner approves it there, and
the Ed25519 approval the runner checks carries (and signs) what syft recorded."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.governance.conftest import mocked_recipe
from workbench.cli import app
from workbench.governance.approvals import ApprovalError, ReleasePolicy, SyftEvidence, approve, check_approval
from workbench.governance.syft_bridge import SYFT_PYTHON_ENV, function_name
from workbench.recipe import parse_recipe
from workbench.runner import run_recipe


def _approve(folder: Path, party: str, *extra: str) -> tuple[int, str]:
    key = folder / "owners" / party / f"{party}.key"
    result = CliRunner().invoke(app, ["approve", str(folder / "recipe.yaml"), "--party", party, "--key", str(key), "--yes", *extra])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.slow
def test_the_owner_approves_on_its_syft_datasite_and_the_run_goes_ahead(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As Ray leaves it once a simulation ran in this process: this stack's numpy 2 first on the path, where syft's
    # own Python must not look (it needs numpy 1.24 and fails inside its import otherwise).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p.endswith("site-packages")))
    (folder / "recipe.yaml").write_text(mocked_recipe())
    recipe = parse_recipe(mocked_recipe(), base_dir=folder)
    before = set(Path(tempfile.gettempdir()).glob("workbench-syft-*"))

    code, text = _approve(folder, "north", "--via", "syft")

    assert code == 0, text
    assert "is pending on north's datasite" in text and "Your code is waiting for approval" in text, "syft refused the request while it was pending"
    assert f"def {function_name(recipe.name, recipe.hash())}(data):" in text and recipe.hash() in text, "the owner saw the code request, pinned to the hash"
    approval = check_approval(folder / "approvals", "north", recipe.name, recipe.hash())
    assert approval.syft is not None and approval.syft.status == "approved" and approval.syft.datasite == "workbench-north"
    assert approval.syft.released_rows == 160, "the approved request ran on north's private table (160 rows), not its mock (200)"
    assert set(Path(tempfile.gettempdir()).glob("workbench-syft-*")) == before, "the datasite's folder, with the private table in it, is gone"

    assert _approve(folder, "south")[0] == 0  # the other owner approves through the folder: the runner checks both alike
    result = run_recipe(recipe, folder / "run", base_dir=folder)
    assert result.manifest["governance"]["mode"] == "approved"


def test_the_syft_evidence_is_signed_with_the_approval(folder: Path) -> None:
    recipe = parse_recipe(mocked_recipe(), base_dir=folder)
    evidence = SyftEvidence(datasite="workbench-north", request_id="r1", code_hash="c" * 64, requested_by="researcher", status="approved", released_rows=160)
    approve(folder / "approvals", "north", recipe.name, recipe.hash(), "review", folder / "owners" / "north" / "north.key", ReleasePolicy(), evidence)
    assert check_approval(folder / "approvals", "north", recipe.name, recipe.hash()).syft == evidence
    path = folder / "approvals" / "north.approvals.json"
    approvals = json.loads(path.read_text())
    approvals[0]["syft"]["released_rows"] = 10_000
    path.write_text(json.dumps(approvals))
    with pytest.raises(ApprovalError, match="does not verify against the registered key"):
        check_approval(folder / "approvals", "north", recipe.name, recipe.hash())


def test_without_a_syft_environment_the_error_says_how_to_make_one(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "recipe.yaml").write_text(mocked_recipe())
    monkeypatch.setenv(SYFT_PYTHON_ENV, os.fspath(folder / "no-such-python"))
    code, text = _approve(folder, "north", "--via", "syft")
    assert code == 2 and "no syft environment at" in text and "scripts/syft-env" in text
    assert not (folder / "approvals" / "north.approvals.json").exists()
