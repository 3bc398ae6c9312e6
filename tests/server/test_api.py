"""The REST API the sidebar uses, against a real Jupyter server: authentication first, then each endpoint."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from tests.server.conftest import LIGHT_REF
from tests.server.live import JupyterProcess
from workbench.notebook import HEADER_TAG, STEP_TAG
from workbench.recipe import load_recipe

API = "ppml-workbench/api"
RUN_LIMIT_S = 240
ROUTES = [
    ("GET", "recipes"),
    ("POST", "recipes/validate"),
    ("POST", "notebooks"),
    ("POST", "export"),
    ("POST", "approvals/review"),
    ("POST", "approvals"),
    ("GET", "runs"),
    ("POST", "runs"),
    ("GET", "runs/anything/report"),
    ("DELETE", "runs/anything"),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_a_request_without_the_token_is_refused(server: JupyterProcess, method: str, route: str) -> None:
    status, _ = server.request(method, f"{API}/{route}", {"ref": "package/flagship.yaml"} if method == "POST" else None, token=False)
    assert status == 403


def test_a_post_with_a_login_cookie_but_no_xsrf_token_is_refused(server: JupyterProcess) -> None:
    status, _ = server.request(
        "POST",
        f"{API}/recipes/validate",
        {"ref": "package/flagship.yaml"},
        token=False,
        headers={"Cookie": f"_xsrf=abc; username-127-0-0-1-{server.port}=forged"},
    )
    assert status == 403


def test_a_wrong_token_is_refused(server: JupyterProcess) -> None:
    status, _ = server.request("GET", f"{API}/recipes", token=False, headers={"Authorization": "token not-the-token"})
    assert status == 403


def test_the_gallery_lists_package_and_workspace_recipes_with_parties_and_steps(server: JupyterProcess) -> None:
    status, body = server.request("GET", f"{API}/recipes")
    assert status == 200
    cards = {card["ref"]: card for card in body["recipes"]}
    flagship = cards["package/flagship.yaml"]
    expected = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "flagship.yaml")
    assert [step["kind"] for step in flagship["steps"]] == [spec.kind for spec in expected.steps]
    assert {party["name"] for party in flagship["parties"]} == set(expected.parties)
    assert flagship["problems"] == []
    broken = cards["workspace/lab/broken.recipe.yaml"]
    assert broken["source"] == "workspace"
    assert [step["kind"] for step in broken["steps"]] == ["split", "evaluate"]


def test_validate_places_each_problem_against_its_step(server: JupyterProcess) -> None:
    status, body = server.request("POST", f"{API}/recipes/validate", {"ref": "workspace/lab/broken.recipe.yaml"})
    assert status == 200 and body["ok"] is False
    fraction = [p for p in body["problems"] if p["path"] == "steps[0].params.test_fraction"]
    assert fraction and fraction[0]["step"] == 0 and fraction[0]["line"] == 8
    status, body = server.request("POST", f"{API}/recipes/validate", {"ref": "package/flagship.yaml"})
    assert (status, body) == (200, {"ok": True, "problems": []})


@pytest.mark.parametrize("ref", ["workspace/../../etc/passwd.recipe.yaml", "package/../pyproject.toml", "elsewhere/x.yaml"])
def test_refs_outside_the_recipes_are_refused(server: JupyterProcess, ref: str) -> None:
    status, body = server.request("POST", f"{API}/recipes/validate", {"ref": ref})
    assert status == 404 and ref.split("/")[0] in body["message"] or "outside" in body["message"]


def test_a_missing_field_in_the_body_is_named(server: JupyterProcess) -> None:
    status, body = server.request("POST", f"{API}/notebooks", {})
    assert status == 400 and "ref" in body["message"]


def test_open_as_notebook_then_export_back_gives_the_same_recipe(server: JupyterProcess, workspace: Path) -> None:
    status, body = server.request("POST", f"{API}/notebooks", {"ref": "package/flagship.yaml"})
    assert status == 200
    notebook = nbformat.read(str(workspace / body["path"]), as_version=4)
    tags = [tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])]
    assert tags.count(HEADER_TAG) == 1 and "parameters" in tags
    status, second = server.request("POST", f"{API}/notebooks", {"ref": "package/flagship.yaml"})
    assert second["path"] != body["path"], "a second notebook must not overwrite the first"
    status, exported = server.request("POST", f"{API}/export", {"path": body["path"]})
    assert status == 200
    original = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "flagship.yaml")
    assert exported["hash"] == original.hash()
    assert load_recipe(workspace / exported["path"]).hash() == original.hash()
    assert tags.count(STEP_TAG) == len(original.steps)


def test_export_of_a_plain_notebook_names_the_file(server: JupyterProcess, workspace: Path) -> None:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), str(workspace / "plain.ipynb"))
    status, body = server.request("POST", f"{API}/export", {"path": "plain.ipynb"})
    assert status == 400 and "plain.ipynb" in body["message"] and HEADER_TAG in body["message"]


def test_a_headless_run_goes_from_running_to_finished_with_metrics_and_report(server: JupyterProcess, workspace: Path) -> None:
    status, started = server.request("POST", f"{API}/runs", {"ref": LIGHT_REF})
    assert status == 201 and started["status"] == "running"
    deadline = time.monotonic() + RUN_LIMIT_S
    seen = set()
    while time.monotonic() < deadline:
        _, body = server.request("GET", f"{API}/runs")
        run = next(r for r in body["runs"] if r["id"] == started["id"])
        seen.add(run["status"])
        if run["status"] != "running":
            break
        time.sleep(0.5)
    assert run["status"] == "finished", run
    assert (workspace / "runs" / run["id"] / "events.jsonl").is_file()
    assert any(metric["label"].startswith("AUC local") for metric in run["metrics"])
    assert run["report"] is True
    status, html = server.request("GET", f"{API}/runs/{run['id']}/report")
    assert status == 200 and "<html" in html.lower()
    status, _ = server.request("GET", f"{API}/runs/{run['id']}/report", token=False)
    assert status == 403
    status, _ = server.request("GET", f"{API}/runs/..%2F..%2Fetc/report")
    assert status == 404
