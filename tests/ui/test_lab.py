"""The workbench as a person uses it, in JupyterLab in a real browser.

Opens the sidebar, validates the flagship, opens it as a notebook, runs every
cell, and finds the run monitor's finished state and the results view; then
runs it headless from the sidebar and opens its report. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path

from tests.server.live import JupyterProcess

LONG_MS = 480_000
"""Generous waits for a kernel start and a whole run on a busy 2-core machine; nothing here asserts speed."""
SHORT_MS = 30_000
"""For what is already on the page once JupyterLab has loaded."""


def _open_lab(browser, lab: JupyterProcess):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector(".jp-LabShell", timeout=LONG_MS)
    return context, page


def _open_sidebar(page):  # noqa: ANN001
    if not page.locator("#ppml-workbench-panel").is_visible():
        page.locator(".jp-SideBar .lm-TabBar-tab[data-id='ppml-workbench-panel']").click()
    page.wait_for_selector("#ppml-workbench-panel .wb-card[data-recipe='flagship']", timeout=LONG_MS)


def _wait_for_idle_kernel(page):  # noqa: ANN001
    """The status bar names the kernel and says Idle only once the kernel is started and waiting for work."""
    page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle").first.wait_for(timeout=LONG_MS)


def test_open_the_flagship_as_a_notebook_and_run_it(browser, lab: JupyterProcess, artifacts: Path) -> None:  # noqa: ANN001
    context, page = _open_lab(browser, lab)
    try:
        _open_sidebar(page)
        card = page.locator(".wb-card[data-recipe='flagship']")
        card.locator(".wb-validate").click()
        card.locator(".wb-card-status.wb-valid").wait_for(timeout=LONG_MS)
        page.screenshot(path=str(artifacts / "01-sidebar.png"))

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
        assert list((lab.root / "runs").glob("flagship-*/metrics.json")), "the notebook wrote its run directory"  # type: ignore[attr-defined]
    finally:
        context.close()


def test_run_headless_from_the_sidebar_and_open_the_report(browser, lab: JupyterProcess, artifacts: Path) -> None:  # noqa: ANN001
    context, page = _open_lab(browser, lab)
    try:
        _open_sidebar(page)
        page.locator(".wb-card[data-recipe='flagship'] .wb-run").click()
        finished = page.locator("#ppml-workbench-panel li.wb-run-finished").first
        finished.wait_for(timeout=LONG_MS)
        assert "AUC local" in finished.inner_text()
        finished.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "05-runs-list.png"))
        with context.expect_page() as report_page:
            finished.locator(".wb-report-link").click()
        report = report_page.value
        report.wait_for_load_state()
        assert "flagship" in report.content()
        report.screenshot(path=str(artifacts / "06-report.png"))
    finally:
        context.close()


def test_palette_offers_both_notebook_commands(browser, lab: JupyterProcess, artifacts: Path) -> None:  # noqa: ANN001
    context, page = _open_lab(browser, lab)
    try:
        page.locator(".lm-MenuBar-item", has_text="View").first.click()
        page.locator(".lm-Menu-item:visible", has_text="Activate Command Palette").first.click()
        palette = page.locator(".lm-CommandPalette-input:visible")
        for label in ("Export current notebook to a recipe", "New notebook from a recipe"):
            palette.fill(label)
            page.locator(".lm-CommandPalette-item:visible", has_text=label).first.wait_for(timeout=SHORT_MS)
        page.screenshot(path=str(artifacts / "07-palette.png"))
        page.keyboard.press("Escape")
        launcher = page.locator(".jp-LauncherCard", has_text="Notebook from a recipe")
        if not launcher.count():
            page.locator(".lm-MenuBar-item", has_text="File").first.click()
            page.locator(".lm-Menu-item:visible", has_text="New Launcher").first.click()
        launcher.first.wait_for(state="attached", timeout=SHORT_MS)
        page.screenshot(path=str(artifacts / "08-launcher.png"))
    finally:
        context.close()
