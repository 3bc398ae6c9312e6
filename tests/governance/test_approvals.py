"""A data owner's approval gates its store: no approval, no read; an edit needs a new one; releases and trails verify."""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.governance.conftest import MOCK_COLUMNS, RECIPE, SITES, mocked_recipe
from workbench.cli import app
from workbench.data.sources import FileSource
from workbench.governance.approvals import ReleasePolicy, approve
from workbench.governance.audit_trail import TRAIL_DIR, read_trail
from workbench.governance.verify import verify_run
from workbench.recipe import Recipe, parse_recipe
from workbench.runner import RunError, run_recipe


def _approve_all(folder: Path, recipe: Recipe, policy: ReleasePolicy | None = None) -> None:
    policy = policy or ReleasePolicy()
    for site in SITES:
        approve(folder / "approvals", site, recipe.name, recipe.hash(), "review", folder / "owners" / site / f"{site}.key", policy)


def test_a_recipe_without_approval_reads_no_store(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Path] = []
    original = FileSource.load
    monkeypatch.setattr(FileSource, "load", lambda self, seed, base_dir: opened.append(self.path) or original(self, seed, base_dir))
    recipe = parse_recipe(RECIPE, base_dir=folder)
    with pytest.raises(RunError, match=r"no data was read: party 'north' has not approved recipe 'approved_sites' as run .*`workbench approve") as error:
        run_recipe(recipe, folder / "run", base_dir=folder)
    assert error.value.user_error and "party 'south'" in str(error.value)
    assert opened == [], "no data file was opened"
    for site in SITES:
        assert [entry["event"] for entry in read_trail(folder / "run" / TRAIL_DIR / f"{site}.jsonl")] == ["refused"]
    assert (folder / "run" / "ledger.jsonl").read_text() == ""


def test_approving_then_changing_one_parameter_is_refused(folder: Path) -> None:
    recipe = parse_recipe(RECIPE, base_dir=folder)
    _approve_all(folder, recipe)
    result = run_recipe(recipe, folder / "approved", base_dir=folder)
    assert result.manifest["governance"]["mode"] == "approved" and set(result.manifest["governance"]["approvals"]) == set(SITES)
    changed = parse_recipe(RECIPE, overrides=["steps[1].params.model.l2=0.1"], base_dir=folder)
    expected = rf"has not approved recipe 'approved_sites' as run \(hash {changed.hash()[:8]}; its approvals: approved_sites {recipe.hash()[:8]}\)"
    with pytest.raises(RunError, match=rf"party 'north' {expected}"):
        run_recipe(changed, folder / "changed", base_dir=folder)


def test_an_altered_approval_is_refused(folder: Path) -> None:
    recipe = parse_recipe(RECIPE, base_dir=folder)
    _approve_all(folder, recipe)
    path = folder / "approvals" / "south.approvals.json"
    approvals = json.loads(path.read_text())
    approvals[0]["release"]["min_rows"] = 1  # a looser policy than the owner signed
    path.write_text(json.dumps(approvals))
    with pytest.raises(RunError, match=r"party 'south': the approval of recipe 'approved_sites' .* does not verify against the registered key"):
        run_recipe(recipe, folder / "run", base_dir=folder)


def test_signing_with_another_partys_key_is_refused(folder: Path) -> None:
    recipe = parse_recipe(RECIPE, base_dir=folder)
    with pytest.raises(Exception, match=r"is not the key registered for party 'north'"):
        approve(folder / "approvals", "north", recipe.name, recipe.hash(), "review", folder / "owners" / "south" / "south.key", ReleasePolicy())


def test_a_released_output_equals_what_the_ledger_recorded(folder: Path) -> None:
    recipe = parse_recipe(RECIPE, base_dir=folder)
    _approve_all(folder, recipe)
    result = run_recipe(recipe, folder / "run", base_dir=folder)
    ledger = {message.seq: message for message in result.ledger.messages}
    releases = [entry for site in SITES for entry in read_trail(folder / "run" / TRAIL_DIR / f"{site}.jsonl") if entry["event"] == "release"]
    assert {(entry["party"], entry["step"]) for entry in releases} >= {(site, "evaluate") for site in SITES}
    for entry in releases:
        message = ledger[entry["ledger_seq"]]
        assert (message.sender, message.receiver, message.digest) == (entry["party"], "coordinator", entry["digest"])
        published = json.dumps(result.metrics["steps"][entry["step"]][entry["party"]], sort_keys=True).encode()
        assert hashlib.sha256(published).hexdigest() == entry["digest"]
    reads = [entry for entry in read_trail(folder / "run" / TRAIL_DIR / "north.jsonl") if entry["event"] == "read"]
    assert {entry["step"] for entry in reads} == {"split", "local_train", "evaluate"} and all(entry["rows"] == 160 for entry in reads)
    problems, checked = verify_run(folder / "run", folder / "approvals")
    assert problems == [] and checked > 10


def test_a_summary_over_fewer_rows_than_the_policy_is_held(folder: Path) -> None:
    recipe = parse_recipe(RECIPE, base_dir=folder)
    _approve_all(folder, recipe, ReleasePolicy(min_rows=150))  # north has 160 rows, south 120
    with pytest.raises(
        RunError,
        match=r"party 'south' holds its summary of step '\w+': it is computed from 120 rows, and the owner's policy releases summaries of at least 150",
    ):
        run_recipe(recipe, folder / "run", base_dir=folder)
    held = [entry for entry in read_trail(folder / "run" / TRAIL_DIR / "south.jsonl") if entry["event"] in ("held", "release")]
    assert [entry["event"] for entry in held] == ["held"]
    sent = [json.loads(line) for line in (folder / "run" / "ledger.jsonl").read_text().splitlines()]
    assert not [m for m in sent if m["sender"] == "south" and m["receiver"] == "coordinator"]


@pytest.mark.parametrize("tamper", ["edit", "remove", "truncate"])
def test_tampering_with_the_audit_log_is_detected(folder: Path, tamper: str) -> None:
    recipe = parse_recipe(RECIPE, base_dir=folder)
    _approve_all(folder, recipe)
    run_recipe(recipe, folder / "run", base_dir=folder)
    assert CliRunner().invoke(app, ["audit", "verify", str(folder / "run")]).exit_code == 0
    trail = folder / "run" / TRAIL_DIR / "north.jsonl"
    lines = trail.read_text().splitlines()
    if tamper == "edit":
        entry = json.loads(lines[2])
        entry["rows"] = 1
        lines[2] = json.dumps(entry, sort_keys=True)
    elif tamper == "remove":
        del lines[2]
    else:
        lines = lines[:-1]
    trail.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["audit", "verify", str(folder / "run")])
    expected = {"edit": "does not match its hash", "remove": "removed or reordered", "truncate": "cut off the end"}[tamper]
    assert result.exit_code == 1 and expected in " ".join(result.output.split()), result.output


def test_the_owner_reviews_on_mock_rows_signs_and_the_run_goes_ahead(folder: Path) -> None:
    for site in ("north", "south"):
        review = CliRunner().invoke(
            app, ["approve", str(folder / "recipe.yaml"), "--party", site, "--key", str(folder / "owners" / site / f"{site}.key"), "--yes"]
        )
        text = " ".join(review.output.split())
        assert review.exit_code == 2 and "declares no mock columns; add `mock:`" in text, "a file without declared mock columns cannot be reviewed"
    (folder / "recipe.yaml").write_text(mocked_recipe())
    for site in ("north", "south"):
        review = CliRunner().invoke(
            app, ["approve", str(folder / "recipe.yaml"), "--party", site, "--key", str(folder / "owners" / site / f"{site}.key"), "--yes"]
        )
        text = " ".join(review.output.split())
        assert review.exit_code == 0, review.output
        assert f"No row-level data leaves {site}" in text and "metrics.summary" in text and f"{site} approved approved_sites" in text
    run = CliRunner().invoke(app, ["run", str(folder / "recipe.yaml"), "--out", str(folder / "run")])
    assert run.exit_code == 0, run.output
    assert "Data access: every data owner approved this recipe's hash" in html.unescape((folder / "run" / "report.html").read_text())
    assert CliRunner().invoke(app, ["audit", "verify", str(folder / "run"), "--approvals", str(folder / "approvals")]).exit_code == 0


def test_a_mock_run_opens_no_data_file(folder: Path) -> None:
    text = RECIPE.replace("path: north.csv}", f"path: gone.csv, mock: {MOCK_COLUMNS}}}").replace(
        "path: south.csv}", f"path: gone.csv, mock: {MOCK_COLUMNS}, mock_rows: 50}}"
    )
    result = run_recipe(parse_recipe(text), folder / "run", base_dir=folder, mock=True)
    assert result.manifest["data"]["north"]["rows"] == 200 and result.manifest["data"]["south"]["rows"] == 50
    assert "mock data: every table is drawn from its declared schema" in (folder / "run" / "report.html").read_text()
    assert read_trail(folder / "run" / TRAIL_DIR / "north.jsonl")[0]["mode"] == "mock"


def test_each_variant_of_a_sweep_needs_its_own_approval(folder: Path) -> None:
    from workbench.sweep import Sweep, run_sweep

    recipe = parse_recipe(RECIPE, base_dir=folder)
    _approve_all(folder, recipe)  # the recipe as written, l2 0.01: the variants below are other recipes
    swept = run_sweep(folder / "recipe.yaml", Sweep.parse("steps[local_train].params.model.l2=0.01,1"), folder / "sweep")
    outcome = {variant.label: (variant.status, variant.error or "") for variant in swept.variants}
    assert outcome["l2=0.01"][0] == "finished"
    assert outcome["l2=1"][0] == "failed" and "has not approved recipe 'approved_sites' as run" in outcome["l2=1"][1]
