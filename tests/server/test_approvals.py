"""Owner approval through the sidebar's endpoints: the review a dry run shows, and the signature pinned to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import SITES_REF
from tests.server.live import JupyterProcess
from workbench.governance.approvals import APPROVALS_DIR, check_approval
from workbench.recipe import load_recipe

API = "ppml-workbench/api"
KEY = "consortium/owners/{party}/{party}.key"


def _card(server: JupyterProcess, ref: str) -> dict:
    status, body = server.request("GET", f"{API}/recipes")
    assert status == 200
    return next(card for card in body["recipes"] if card["ref"] == ref)


def test_the_review_names_each_step_its_columns_and_flows_from_a_dry_run(server: JupyterProcess) -> None:
    status, review = server.request("POST", f"{API}/approvals/review", {"ref": SITES_REF, "party": "north"})
    assert status == 200, review
    assert review["party"] == "north" and len(review["digest"]) == 64
    steps = {step["step"]: step for step in review["steps"]}
    assert set(steps) == {"split", "local_train", "evaluate"}
    assert set(steps["local_train"]["reads"]["data"]) >= {"x0", "x1", "y"}
    assert review["row_level"] == 0
    assert all(flow["protection"] for step in review["steps"] for flow in step["sends"])


def test_signing_the_shown_review_files_an_approval_the_runner_accepts(server: JupyterProcess, workspace: Path) -> None:
    assert {p["name"]: p["approval"] for p in _card(server, SITES_REF)["parties"]}["south"] == "needed"
    _, review = server.request("POST", f"{API}/approvals/review", {"ref": SITES_REF, "party": "south"})
    body = {"ref": SITES_REF, "party": "south", "key": KEY.format(party="south"), "digest": review["digest"], "min_rows": 20}
    status, signed = server.request("POST", f"{API}/approvals", body)
    assert status == 201, signed
    recipe = load_recipe(workspace / "consortium" / "sites.recipe.yaml")
    assert signed["hash"] == recipe.hash()
    approval = check_approval(workspace / "consortium" / APPROVALS_DIR, "south", recipe.name, recipe.hash())
    assert approval.release.min_rows == 20 and approval.review_digest == review["digest"]
    assert {p["name"]: p["approval"] for p in _card(server, SITES_REF)["parties"]}["south"] == "approved"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"digest": "0" * 64}, "changed since its review was shown"),
        ({"key": "../outside.key"}, "key '../outside.key'"),
        ({"key": "consortium/owners/north/missing.key"}, "workbench keys new --party north"),
        ({"key": KEY.format(party="south")}, "is not the key registered for party 'north'"),
        ({"party": "aggregator"}, "holds no data"),
        ({"ref": "package/flagship.yaml"}, "ships with the package"),
        ({"min_rows": "ten"}, "min_rows must be a whole number"),
    ],
)
def test_a_sign_request_that_does_not_match_is_refused_naming_why(server: JupyterProcess, change: dict, message: str) -> None:
    _, review = server.request("POST", f"{API}/approvals/review", {"ref": SITES_REF, "party": "north"})
    body = {"ref": SITES_REF, "party": "north", "key": KEY.format(party="north"), "digest": review["digest"], **change}
    status, refusal = server.request("POST", f"{API}/approvals", body)
    assert status == 400 and message in refusal["message"], refusal
    assert {p["name"]: p["approval"] for p in _card(server, SITES_REF)["parties"]}["north"] == "needed"
