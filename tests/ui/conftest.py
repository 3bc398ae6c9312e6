"""JupyterLab on 127.0.0.1 with a token, news turned off, and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.governance.conftest import mocked_recipe, write_sites
from tests.server.conftest import BROKEN_RECIPE
from tests.server.live import JupyterProcess, private_dir
from workbench.recipe import Recipe

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def lab(artifacts: Path, light_flagship: Recipe) -> Iterator[JupyterProcess]:
    """JupyterLab on a workspace with a broken recipe, the light flagship (the package's flagship, with fewer rounds
    and vendor-only people: the same chain, run in the browser in a fraction of the time) and two sites whose owners
    must approve the recipe beside their files."""
    with private_dir("lab") as scratch:
        root, settings = scratch / "workspace", scratch / "app-settings"
        (root / "lab").mkdir(parents=True)
        (root / "lab" / "broken.recipe.yaml").write_text(BROKEN_RECIPE)
        (root / "lab" / "light.recipe.yaml").write_text(light_flagship.to_yaml())
        write_sites(root / "consortium", mocked_recipe(), "sites.recipe.yaml")
        settings.mkdir()
        (settings / "overrides.json").write_text(json.dumps(OVERRIDES))
        env = {**os.environ, "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "lab-workspaces"), "JUPYTERLAB_SETTINGS_DIR": str(scratch / "user-settings")}
        process = JupyterProcess("lab", root, artifacts / "jupyterlab.log", [f"--LabApp.app_settings_dir={settings}"], env=env)
        process.root = root  # type: ignore[attr-defined]
        yield process
        process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
