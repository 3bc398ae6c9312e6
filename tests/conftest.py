"""Shared fixtures: the shipped recipes, one full flagship run and one light one, reused by read-only tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.recipe import Recipe, load_recipe
from workbench.runner import RunResult, run_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
LIGHT_ROUNDS = 15
LIGHT_VENDOR_ONLY_PEOPLE = 1000

SLOW_FOLDERS = ("ui",)
"""A real JupyterLab in Chromium, and the wheel in a fresh environment."""
SLOW_MODULES = ("test_deployment", "test_federation_security", "test_simulation", "test_notebook", "test_api")
"""Real processes on loopback (SuperLink, SuperNodes, Ray, Jupyter servers, kernels)."""
SLOW_FIXTURES = {"flagship_run", "light_flagship_run", "light_flagship_path", "strategies_run", "linkage_run", "killed_run"}
"""Whole recipe runs shared by the tests that read them: tens of seconds each."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`-m "not slow"` is the loop a developer runs between edits (under 3 minutes): everything that starts real
    processes or runs a whole recipe is `slow`, found by folder, module and fixture so no test has to remember it."""
    for item in items:
        path = item.path
        if path.parent.name in SLOW_FOLDERS or path.stem in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def uci_recipe(name: str, steps: str, sites: tuple[str, ...] = ("cleveland", "hungary"), *, key_holder: bool = False) -> str:
    """A small recipe on the real UCI heart sites: the sites as hospitals, an aggregator (and a key holder), then `steps` (YAML)."""
    parties = "".join(f"  {site}: {{role: hospital, data: {{dataset: uci, part: {site}}}}}\n" for site in sites)
    holder = "  key_holder: {role: key_holder}\n" if key_holder else ""
    return (
        f"name: {name}\nseed: 1\napprovals: not_required\ndatasets: {{uci: {{kind: uci_heart}}}}\n"
        f"parties:\n{parties}  aggregator: {{role: aggregator}}\n{holder}"
        f"steps:\n  - {{kind: split, params: {{label: heart_disease}}}}\n{steps}"
    )


def light_overrides(recipe: Recipe) -> list[str]:
    """The same pipeline at a fraction of the cost: fewer vendor-only people to link against, fewer rounds."""
    rounds = [f"steps[{i}].params.rounds={LIGHT_ROUNDS}" for i, step in enumerate(recipe.steps) if step.kind == "fl_train"]
    return [f"datasets.cohort.vendor_only_people={LIGHT_VENDOR_ONLY_PEOPLE}", *rounds]


@pytest.fixture(scope="session")
def flagship_path() -> Path:
    return RECIPES / "flagship.yaml"


@pytest.fixture(scope="session")
def flagship(flagship_path: Path) -> Recipe:
    return load_recipe(flagship_path)


@pytest.fixture(scope="session")
def flagship_run(flagship: Recipe, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The one full-size flagship run, for tests whose figures need it (federated near pooled, the small site's gain)."""
    return run_recipe(flagship, tmp_path_factory.mktemp("flagship") / "run", base_dir=RECIPES)


@pytest.fixture(scope="session")
def light_flagship(flagship_path: Path, flagship: Recipe) -> Recipe:
    return load_recipe(flagship_path, light_overrides(flagship))


@pytest.fixture(scope="session")
def light_flagship_path(light_flagship: Recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The light flagship as a recipe file, for tests that go through the command line or a notebook."""
    path = tmp_path_factory.mktemp("light") / "flagship.yaml"
    path.write_text(light_flagship.to_yaml())
    return path


@pytest.fixture(scope="session")
def light_flagship_run(light_flagship: Recipe, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The flagship with every step, plain and encrypted training side by side, in a fraction of the time."""
    return run_recipe(light_flagship, tmp_path_factory.mktemp("light-flagship") / "run", base_dir=RECIPES)
