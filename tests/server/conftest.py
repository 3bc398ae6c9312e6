"""One Jupyter server with the workbench extension, in a scratch workspace, shared by the REST tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.live import JupyterProcess

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
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    (root / "lab").mkdir()
    (root / "lab" / "broken.recipe.yaml").write_text(BROKEN_RECIPE)
    return root


@pytest.fixture(scope="session")
def server(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterProcess]:
    log = tmp_path_factory.mktemp("logs") / "jupyter-server.log"
    process = JupyterProcess("server", workspace, log, ["--ServerApp.jpserver_extensions={'workbench.server': True}"])
    yield process
    process.stop()
