"""One Jupyter server with the workbench extension, in a scratch workspace, shared by the REST tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.live import JupyterProcess, private_dir

BROKEN_RECIPE = """\
name: broken
parties:
  clinic: {role: hospital, data: {dataset: cohort, part: general_hospital}}
datasets:
  cohort: {kind: synthetic_cohort}
steps:
  - kind: split
    params: {label: death_30d, test_fraction: 3}
  - kind: evaluate
    params: {label: death_30d}
"""


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    with private_dir("server") as folder:
        yield folder


@pytest.fixture(scope="session")
def workspace(scratch: Path) -> Path:
    root = scratch / "workspace"
    (root / "lab").mkdir(parents=True)
    (root / "lab" / "broken.recipe.yaml").write_text(BROKEN_RECIPE)
    return root


@pytest.fixture(scope="session")
def server(workspace: Path, scratch: Path) -> Iterator[JupyterProcess]:
    process = JupyterProcess("server", workspace, scratch / "jupyter-server.log", ["--ServerApp.jpserver_extensions={'workbench.server': True}"])
    yield process
    process.stop()
