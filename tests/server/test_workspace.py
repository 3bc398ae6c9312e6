"""No file operation of the lab server goes through a link that leaves the workspace, and no write follows a link at all.

A workspace can hold links nobody at this server made (an unpacked archive, a cloned repository): the REST tests
plant them where the endpoints write and read, the unit tests check Workspace, the one place every handler goes through.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import SLOW_RECIPE
from tests.server.live import JupyterProcess, private_dir
from workbench.recipe import RecipeError
from workbench.server.runs import RunManager
from workbench.server.workspace import Workspace, WorkspaceError

API = "ppml-workbench/api"


@pytest.fixture(scope="module")
def notebook(server: JupyterProcess, workspace: Path) -> Path:
    """A workbench notebook at the workspace root, written by the server, for the export tests."""
    status, body = server.request("POST", f"{API}/notebooks", {"ref": "package/flagship.yaml"})
    assert status == 200
    return workspace / body["path"]


@pytest.fixture
def outside(scratch: Path, request: pytest.FixtureRequest) -> Path:
    """A file beside the workspace, not in it, that a planted link points at."""
    folder = scratch / "outside" / request.node.name
    folder.mkdir(parents=True)
    target = folder / "outside-file"
    target.write_text("not the workbench's to write\n")
    return target


def test_export_refuses_a_planted_link_to_a_file_outside_and_leaves_that_file_alone(server: JupyterProcess, notebook: Path, outside: Path) -> None:
    link = notebook.with_name(f"{notebook.stem}.recipe.yaml")
    link.symlink_to(outside)
    try:
        status, body = server.request("POST", f"{API}/export", {"path": notebook.name})
        assert status == 400, body
        assert link.name in body["message"] and "symbolic link" in body["message"]
        assert outside.read_text() == "not the workbench's to write\n"
        assert link.is_symlink()
    finally:
        link.unlink()


def test_export_does_not_write_through_a_link_even_one_that_stays_inside(server: JupyterProcess, notebook: Path, workspace: Path) -> None:
    inner = workspace / "inner-target.txt"
    inner.write_text("mine\n")
    link = notebook.with_name(f"{notebook.stem}.recipe.yaml")
    link.symlink_to(inner)
    try:
        status, body = server.request("POST", f"{API}/export", {"path": notebook.name})
        assert status == 400 and "symbolic link" in body["message"]
        assert inner.read_text() == "mine\n"
    finally:
        link.unlink()
    status, body = server.request("POST", f"{API}/export", {"path": notebook.name})
    assert status == 200 and body["path"] == link.name and not link.is_symlink()


def test_export_refuses_a_notebook_that_is_a_link_to_outside(server: JupyterProcess, notebook: Path, workspace: Path, outside: Path) -> None:
    foreign = outside.with_name("foreign.ipynb")
    shutil.copy(notebook, foreign)
    (workspace / "foreign.ipynb").symlink_to(foreign)
    status, body = server.request("POST", f"{API}/export", {"path": "foreign.ipynb"})
    assert status == 400 and "foreign.ipynb" in body["message"] and "outside the workspace" in body["message"]
    assert not foreign.with_name("foreign.recipe.yaml").exists()


def test_export_refuses_a_notebook_in_a_linked_folder_outside(server: JupyterProcess, notebook: Path, workspace: Path, outside: Path) -> None:
    shutil.copy(notebook, outside.with_name("nb.ipynb"))
    (workspace / "linked-folder").symlink_to(outside.parent, target_is_directory=True)
    status, body = server.request("POST", f"{API}/export", {"path": "linked-folder/nb.ipynb"})
    assert status == 400 and "linked-folder/nb.ipynb" in body["message"] and "outside the workspace" in body["message"]
    assert sorted(p.name for p in outside.parent.iterdir()) == ["nb.ipynb", "outside-file"]


def test_a_new_notebook_does_not_take_the_name_of_a_dangling_link(server: JupyterProcess, workspace: Path, outside: Path) -> None:
    (workspace / "dangling").mkdir()
    (workspace / "dangling" / "mine.recipe.yaml").write_text(SLOW_RECIPE)
    would_be = outside.with_name("created-outside.ipynb")
    (workspace / "dangling" / "mine.ipynb").symlink_to(would_be)
    status, body = server.request("POST", f"{API}/notebooks", {"ref": "workspace/dangling/mine.recipe.yaml"})
    assert status == 200 and body["path"] == "dangling/mine-1.ipynb"
    assert not would_be.exists() and (workspace / "dangling" / "mine-1.ipynb").is_file()


def test_a_recipe_linked_from_outside_is_not_listed_validated_or_run(server: JupyterProcess, workspace: Path, outside: Path) -> None:
    secret = outside.with_name("secret.recipe.yaml")
    secret.write_text(SLOW_RECIPE)
    (workspace / "lab" / "planted.recipe.yaml").symlink_to(secret)
    ref = "workspace/lab/planted.recipe.yaml"
    _, gallery = server.request("GET", f"{API}/recipes")
    assert ref not in {card["ref"] for card in gallery["recipes"]}
    for method, route in [("POST", "recipes/validate"), ("POST", "runs"), ("POST", "notebooks")]:
        status, body = server.request(method, f"{API}/{route}", {"ref": ref})
        assert status == 404 and "outside the workspace" in body["message"], (route, body)


# --- Workspace itself ------------------------------------------------------------------------------


@pytest.fixture
def roots() -> Iterator[tuple[Workspace, Path]]:
    with private_dir("links") as folder:
        (folder / "ws").mkdir()
        (folder / "elsewhere").mkdir()
        yield Workspace(folder / "ws", package_dir=folder / "elsewhere"), folder / "elsewhere"


def test_writing_creates_and_overwrites_plain_files(roots: tuple[Workspace, Path]) -> None:
    workspace, _ = roots
    out = workspace.write_text(workspace.root / "a.txt", "one")
    assert out == workspace.root / "a.txt" and out.read_text() == "one"
    workspace.write_text(out, "two")
    assert out.read_text() == "two"
    with pytest.raises(WorkspaceError, match="a.txt already exists"):
        workspace.write_text(out, "three", new=True)


def test_writing_follows_a_folder_link_that_stays_inside(roots: tuple[Workspace, Path]) -> None:
    workspace, _ = roots
    (workspace.root / "real").mkdir()
    (workspace.root / "alias").symlink_to(workspace.root / "real", target_is_directory=True)
    assert workspace.write_text(workspace.root / "alias" / "b.txt", "b") == workspace.root / "real" / "b.txt"


@pytest.mark.parametrize("kind", ["link outside", "link inside", "dangling link", "hard link"])
def test_writing_refuses_anything_but_a_plain_file_of_its_own(roots: tuple[Workspace, Path], kind: str) -> None:
    workspace, elsewhere = roots
    target = (elsewhere if kind != "link inside" else workspace.root) / "target.txt"
    target.write_text("untouched")
    planted = workspace.root / "planted.txt"
    if kind == "hard link":
        os.link(target, planted)
    else:
        planted.symlink_to(target if kind != "dangling link" else elsewhere / "nothing-yet.txt")
    with pytest.raises(WorkspaceError, match="planted.txt"):
        workspace.write_text(planted, "overwritten")
    assert target.read_text() == "untouched" and not (elsewhere / "nothing-yet.txt").exists()


def test_nothing_is_written_into_a_folder_that_leads_outside(roots: tuple[Workspace, Path]) -> None:
    workspace, elsewhere = roots
    (workspace.root / "out").symlink_to(elsewhere, target_is_directory=True)
    for attempt in (
        lambda: workspace.write_text(workspace.root / "out" / "x.txt", "x"),
        lambda: workspace.make_dir(workspace.root / "out" / "d"),
        lambda: workspace.free_path(workspace.root / "out", "x", ".ipynb"),
    ):
        with pytest.raises(WorkspaceError, match="outside the workspace"):
            attempt()
    assert list(elsewhere.iterdir()) == []


def test_runs_are_not_started_into_a_runs_folder_that_leads_outside(roots: tuple[Workspace, Path]) -> None:
    workspace, elsewhere = roots
    (workspace.root / "runs").symlink_to(elsewhere, target_is_directory=True)
    (workspace.root / "slow.recipe.yaml").write_text(SLOW_RECIPE)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        RunManager(workspace).start(workspace.recipe("workspace/slow.recipe.yaml"))
    assert list(elsewhere.iterdir()) == []


def test_a_recipe_over_the_size_budget_is_not_read(roots: tuple[Workspace, Path]) -> None:
    workspace, _ = roots
    small = Workspace(workspace.root, package_dir=workspace.package_dir, max_recipe_bytes=len(SLOW_RECIPE))
    (workspace.root / "ok.recipe.yaml").write_text(SLOW_RECIPE)
    assert small.load(workspace.root / "ok.recipe.yaml").name == "slow"
    (workspace.root / "big.recipe.yaml").write_text(SLOW_RECIPE + "#")
    with pytest.raises(RecipeError, match=f"{len(SLOW_RECIPE) + 1:,} bytes, over this server's budget of {len(SLOW_RECIPE):,} bytes"):
        small.load(workspace.root / "big.recipe.yaml")
