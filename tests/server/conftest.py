"""One Jupyter server with the workbench extension, in a scratch workspace, shared by the REST tests.

It allows one run at a time (set through the extension's traitlets config, as an administrator would), so the
concurrency cap is reached with a single slow run; the other budgets keep their defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.governance.conftest import mocked_recipe, write_sites
from tests.server.live import JupyterProcess, private_dir
from workbench.recipe import Recipe

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

SLOW_RECIPE = """\
name: slow
approvals: not_required
parties:
  north: {role: hospital, data: {dataset: cohort, part: north, table: ehr}}
  south: {role: hospital, data: {dataset: cohort, part: south, table: ehr}}
  aggregator: {role: aggregator}
datasets:
  cohort:
    kind: synthetic_cohort
    vendor_only_people: 0
    hospitals:
      - {name: north, patients: 300, emergency_rate: 0.2, mean_age: 60, risk_shift: 0, vendor_coverage: 0.5}
      - {name: south, patients: 300, emergency_rate: 0.4, mean_age: 70, risk_shift: 0.5, vendor_coverage: 0.5}
steps:
  - kind: split
    params: {table: ehr, label: death_30d, test_fraction: 0.3}
  - kind: fl_train
    name: endless
    params:
      table: ehr
      label: death_30d
      features: {numeric: [age, asa_class]}
      model: {family: logistic}
      rounds: 10000
"""
"""Minutes of federated rounds on 600 patients: a run that is still going when a test cancels it."""
SLOW_REF = "workspace/lab/slow.recipe.yaml"
MAX_RUNS = 1
CANCEL_GRACE_S = 3


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    with private_dir("server") as folder:
        yield folder


LIGHT_REF = "workspace/lab/light.recipe.yaml"
"""The light flagship (tests/conftest.py), for a whole run through the server at a fraction of the full one's cost."""


SITES_REF = "workspace/consortium/sites.recipe.yaml"
"""Two sites' CSV files whose owners must approve the recipe beside them, keys in consortium/owners/SITE/SITE.key."""


@pytest.fixture(scope="session")
def workspace(scratch: Path, light_flagship: Recipe) -> Path:
    root = scratch / "workspace"
    (root / "lab").mkdir(parents=True)
    (root / "lab" / "broken.recipe.yaml").write_text(BROKEN_RECIPE)
    (root / "lab" / "slow.recipe.yaml").write_text(SLOW_RECIPE)
    (root / "lab" / "light.recipe.yaml").write_text(light_flagship.to_yaml())
    write_sites(root / "consortium", mocked_recipe(), "sites.recipe.yaml")
    return root


@pytest.fixture(scope="session")
def server(workspace: Path, scratch: Path) -> Iterator[JupyterProcess]:
    config = [
        "--ServerApp.jpserver_extensions={'workbench.server': True}",
        f"--WorkbenchLimits.max_concurrent_runs={MAX_RUNS}",
        f"--WorkbenchLimits.cancel_grace_s={CANCEL_GRACE_S}",
    ]
    process = JupyterProcess("server", workspace, scratch / "jupyter-server.log", config)
    yield process
    process.stop()
