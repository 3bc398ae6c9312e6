"""Shared fixtures: the shipped recipes and one flagship run reused by read-only tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.recipe import Recipe, load_recipe
from workbench.runner import RunResult, run_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


@pytest.fixture(scope="session")
def flagship_path() -> Path:
    return RECIPES / "flagship.yaml"


@pytest.fixture(scope="session")
def flagship(flagship_path: Path) -> Recipe:
    return load_recipe(flagship_path)


@pytest.fixture(scope="session")
def flagship_run(flagship: Recipe, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One flagship run for tests that only read its outputs."""
    return run_recipe(flagship, tmp_path_factory.mktemp("flagship") / "run", base_dir=RECIPES)
