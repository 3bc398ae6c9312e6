"""The command line starts without the heavy libraries: they load where they are used (see ARCHITECTURE.md).

`workbench validate`, `workbench schema` and `workbench run --help` need none of them; a module-level import of one
anywhere on the CLI's import path costs every command its load time (seconds for scipy, matplotlib and Flower).
Each check runs in a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "polars", "scipy", "matplotlib", "flwr", "grpc", "tenseal", "ray", "sklearn", "private_set_intersection", "voprf", "jinja2")
"""Top-level modules: openmined-psi installs `private_set_intersection`, scikit-learn `sklearn`."""
LOADED = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"


def loaded_after(code: str) -> str:
    """The heavy modules loaded once `code` has run in a fresh interpreter, from the checkout this test is in."""
    done = subprocess.run([sys.executable, "-c", f"{code}\nprint({LOADED})"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert loaded_after("import sys, workbench.cli") == "[]"


def test_validate_and_schema_load_no_heavy_library() -> None:
    commands = [["validate", *(str(path) for path in sorted((ROOT / "recipes").glob("*.yaml")))], ["schema"], ["run", "--help"]]
    code = f"import sys\nfrom workbench.cli import app\nfor args in {commands!r}:\n    app(args, standalone_mode=False)"
    assert loaded_after(code) == "[]"
