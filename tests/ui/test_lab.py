"""The workbench as a person uses it, in JupyterLab in a real browser.

Opens the sidebar, validates the flagship, opens it as a notebook, runs every
cell, and finds the run monitor's finished state and the results view; then
runs it headless from the sidebar and opens its report. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.live import JupyterProcess
from workbench.governance.approvals import APPROVALS_DIR, check_approval
from workbench.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]

LONG_MS = 480_000
"""Generous waits for a kernel start and a whole run on a busy 2-core machine; nothing here asserts speed."""
SHORT_MS = 30_000
"""For what is already on the page once JupyterLab has loaded."""


@pytest.fixture
def lab_page(browser, lab: JupyterProcess, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[tuple[object, object]]:  # noqa: ANN001
    """A fresh browser context on JupyterLab; its last state is kept as a screenshot, which tells what a failure saw."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    # A workspace of its own, reset: each test starts from JupyterLab's default layout (sidebar closed, launcher open).
    page.goto(f"{lab.url}/lab/workspaces/{request.node.name.removeprefix('test_')}?reset&token={lab.token}")
    page.locator(".jp-LauncherCard").first.wait_for(timeout=LONG_MS)
    yield context, page
    page.screenshot(path=str(artifacts / f"last-{request.node.name}.png"))
    context.close()


def _open_sidebar(page):  # noqa: ANN001
    page.locator(".jp-SideBar .lm-TabBar-tab[data-id='ppml-workbench-panel']").click()
    page.wait_for_selector("#ppml-workbench-panel .wb-card[data-ref='package/flagship.yaml']", timeout=LONG_MS)


def _palette(page, label: str):  # noqa: ANN001, ANN202
    """The command palette's entry for `label`, opened from the View menu."""
    page.locator(".lm-MenuBar-item", has_text="View").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Activate Command Palette").first.click()
    palette = page.locator(".lm-CommandPalette-input:visible")
    palette.wait_for(timeout=SHORT_MS)
    palette.fill(label)
    item = page.locator(".lm-CommandPalette-item:visible", has_text=label).first
    item.wait_for(timeout=SHORT_MS)
    return item


def _wait_for_idle_kernel(page):  # noqa: ANN001
    """The status bar names the kernel and says Idle only once the kernel is started and waiting for work."""
    page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle").first.wait_for(timeout=LONG_MS)


def test_open_the_flagship_as_a_notebook_and_run_it(lab_page, lab: JupyterProcess, artifacts: Path, light_flagship: Recipe) -> None:  # noqa: ANN001
    _, page = lab_page
    _open_sidebar(page)
    package = page.locator(".wb-card[data-ref='package/flagship.yaml']")
    package.locator(".wb-validate").click()
    package.locator(".wb-card-status.wb-valid").wait_for(timeout=LONG_MS)
    page.screenshot(path=str(artifacts / "01-sidebar.png"))
    card = page.locator(".wb-card[data-ref='workspace/lab/light.recipe.yaml']")

    card.locator(".wb-open").click()
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.wait_for(timeout=LONG_MS)
    _wait_for_idle_kernel(page)
    page.screenshot(path=str(artifacts / "02-notebook.png"))

    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
    finished = page.locator(".wb-run-monitor .wb-run-finished")
    finished.wait_for(timeout=LONG_MS)
    results = page.locator(".wb-results .wb-results-table")
    results.wait_for(timeout=LONG_MS)
    _wait_for_idle_kernel(page)
    assert "finished" in finished.inner_text()
    assert "local" in results.inner_text()
    page.locator(".wb-run-monitor").first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "03-run-monitor.png"))
    page.locator(".wb-ledger-view").first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "04-results-and-ledger.png"))
    assert list((lab.root / "lab" / "runs").glob("flagship-*/metrics.json")), "the notebook wrote its run directory"  # type: ignore[attr-defined]

    source = lab.root / "lab" / "light.recipe.yaml"  # type: ignore[attr-defined]
    source.unlink()  # export writes NAME.recipe.yaml beside the notebook: here the recipe it was opened from
    _palette(page, "Export current notebook to a recipe").click()
    page.locator(".jp-Dialog", has_text="Recipe exported").wait_for(timeout=LONG_MS)
    page.screenshot(path=str(artifacts / "05-exported.png"))
    page.locator(".jp-Dialog button", has_text="Close").click()
    exported = load_recipe(source)
    assert exported.hash() == light_flagship.hash()


def test_validate_shows_each_problem_against_its_step(lab_page, artifacts: Path) -> None:  # noqa: ANN001
    _, page = lab_page
    _open_sidebar(page)
    card = page.locator(".wb-card[data-ref='workspace/lab/broken.recipe.yaml']")
    card.locator(".wb-validate").click()
    invalid = card.locator(".wb-step-invalid")
    invalid.first.wait_for(timeout=LONG_MS)
    assert invalid.count() == 1 and invalid.first.get_attribute("data-step") == "split"
    assert "test_fraction" in invalid.first.inner_text() and "line 8" in invalid.first.inner_text()
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "06-validation.png"))


def test_run_headless_from_the_sidebar_and_open_the_report(lab_page, lab: JupyterProcess, artifacts: Path) -> None:  # noqa: ANN001
    context, page = lab_page
    _open_sidebar(page)
    page.locator("#ppml-workbench-panel .wb-runs-host").wait_for(timeout=SHORT_MS)
    before = page.locator("#ppml-workbench-panel li.wb-run").count()
    page.locator(".wb-card[data-ref='workspace/lab/light.recipe.yaml'] .wb-run").click()
    page.locator("#ppml-workbench-panel li.wb-run-running").first.wait_for(timeout=LONG_MS)
    page.screenshot(path=str(artifacts / "07-run-in-progress.png"))
    page.wait_for_function(
        "n => document.querySelectorAll('#ppml-workbench-panel li.wb-run').length > n && !document.querySelector('#ppml-workbench-panel li.wb-run-running')",
        arg=before,
        timeout=LONG_MS,
    )
    finished = page.locator("#ppml-workbench-panel li.wb-run").first
    assert "wb-run-finished" in (finished.get_attribute("class") or ""), finished.inner_text()
    assert "AUC local" in finished.inner_text()
    finished.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "08-runs-list.png"))
    with context.expect_page() as report_page:
        finished.locator(".wb-report-link").click()
    report = report_page.value
    report.wait_for_load_state()
    assert "flagship" in report.content()
    report.screenshot(path=str(artifacts / "09-report.png"))


def test_palette_offers_both_notebook_commands(lab_page, lab: JupyterProcess, artifacts: Path) -> None:  # noqa: ANN001
    _, page = lab_page
    _palette(page, "Export current notebook to a recipe")
    page.keyboard.press("Escape")
    _palette(page, "New notebook from a recipe")
    page.screenshot(path=str(artifacts / "10-palette.png"))
    page.keyboard.press("Escape")
    page.locator(".jp-LauncherCard:visible", has_text="Notebook from a recipe").first.wait_for(timeout=SHORT_MS)
    page.locator(".jp-LauncherCard:visible", has_text="Export current notebook to a recipe").first.wait_for(timeout=SHORT_MS)
    page.screenshot(path=str(artifacts / "11-launcher.png"))


def test_an_owner_reviews_and_signs_a_recipe_from_its_card(lab_page, lab: JupyterProcess, artifacts: Path) -> None:  # noqa: ANN001
    _, page = lab_page
    _open_sidebar(page)
    card = page.locator(".wb-card[data-ref='workspace/consortium/sites.recipe.yaml']")
    north = card.locator(".wb-party[data-party='north']")
    assert "wb-approval-needed" in (north.get_attribute("class") or "")
    card.locator(".wb-approve-button").click()
    form = card.locator(".wb-approve")
    assert form.locator(".wb-approve-party").input_value() == "north"
    assert form.locator(".wb-sign").is_disabled(), "nothing is signed before its review is shown"
    form.locator(".wb-approve-key").fill("consortium/owners/north/north.key")
    form.locator(".wb-review-button").click()
    steps = form.locator(".wb-review tr.wb-review-step")
    steps.first.wait_for(timeout=LONG_MS)
    assert [steps.nth(i).get_attribute("data-step") for i in range(steps.count())] == ["split", "local_train", "evaluate"]
    assert "no row-level data leaves north" in form.locator(".wb-review-headline").inner_text()
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "12-approval-review.png"))
    form.locator(".wb-sign").click()
    form.locator(".wb-approve-status.wb-valid").wait_for(timeout=LONG_MS)
    assert "north approved approved_sites" in form.locator(".wb-approve-status").inner_text()
    assert "wb-approval-approved" in (card.locator(".wb-party[data-party='north']").get_attribute("class") or "")
    recipe = load_recipe(lab.root / "consortium" / "sites.recipe.yaml")  # type: ignore[attr-defined]
    check_approval(lab.root / "consortium" / APPROVALS_DIR, "north", recipe.name, recipe.hash())  # type: ignore[attr-defined]
    page.screenshot(path=str(artifacts / "13-approval-signed.png"))
