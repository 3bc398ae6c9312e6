"""The shape of the psi_link package: one class per reveal mode, nothing else branching on reveal, no truth in the step, lazy crypto."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from workbench.context import StepContext
from workbench.crypto import psi
from workbench.report import linkage_truth
from workbench.steps import psi_link
from workbench.steps.base import StepParams
from workbench.steps.psi_link import params
from workbench.steps.psi_link.mode import RevealMode
from workbench.steps.psi_link.modes import MODES

PACKAGE = Path(psi_link.__file__).parent
SCORER = Path(linkage_truth.__file__)
HEAVY = ("private_set_intersection", "voprf", "cryptography", "workbench.crypto.psi", "workbench.crypto.labeled_psi")
"""What a pass needs and loading a recipe must not: openmined-psi, the OPRF, AES-GCM, and the workbench modules that import them."""


def _modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_every_reveal_value_has_one_mode_class() -> None:
    assert list(MODES) == list(get_args(params.Reveal))
    for reveal, mode in MODES.items():
        assert issubclass(mode, RevealMode) and mode.reveal == reveal and mode.protocol in {"ecdh", "labeled"}
        assert all(kind.startswith("psi.") for kind in mode.messages)
        assert not getattr(mode, "__abstractmethods__", None), f"{mode.__name__} leaves part of the protocol out"


def test_nothing_but_the_mode_registry_branches_on_reveal() -> None:
    """A comparison or match on `reveal` anywhere in the step or its scorer would be a mode's knowledge living outside its class."""
    for path in [*_modules(), SCORER]:
        for node in ast.walk(ast.parse(path.read_text())):
            operands = [node.left, *node.comparators] if isinstance(node, ast.Compare) else [node.subject] if isinstance(node, ast.Match) else []
            names = {
                operand.slice.value
                if isinstance(operand, ast.Subscript) and isinstance(operand.slice, ast.Constant)
                else getattr(operand, "attr", getattr(operand, "id", None))
                for operand in operands
            }
            assert "reveal" not in names, f"{path.name}:{node.lineno} branches on reveal"


def test_the_step_never_gets_the_generators_truth() -> None:
    assert "ground_truth" not in StepContext.__dataclass_fields__
    for path in _modules():
        assert "truth" not in {node.attr for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute)}, path.name


def test_the_scorer_scores_only_linkage_steps_with_a_truth() -> None:
    assert linkage_truth.score_linkage(StepParams(), None, {"cohort": object()}) is None  # type: ignore[arg-type]
    linking = psi_link.PsiLinkParams.model_validate(
        {
            "requester": {"table": "ehr", "fields": {"phone": {"column": "phone"}}},
            "provider": {"table": "vitals", "fields": {"phone": {"column": "tel"}}},
            "passes": [{"name": "phone", "fields": ["phone"]}],
        }
    )
    assert linkage_truth.score_linkage(linking, None, {}) is None  # type: ignore[arg-type]


def test_the_ecdh_defaults_are_the_librarys() -> None:
    """params.py repeats two names of workbench.crypto.psi so that loading a recipe does not load openmined-psi; they must agree."""
    assert get_args(params.DataStructure) == get_args(psi.DataStructure)
    assert params.DEFAULT_CHUNK == psi.DEFAULT_CHUNK


def test_no_module_of_the_step_imports_a_psi_library_when_it_loads() -> None:
    """Only pydantic, polars and numpy (and the workbench's light modules) at import; the PSI code inside the functions that run a pass."""
    for path in [*_modules(), SCORER]:
        tree = ast.parse(path.read_text())
        top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
        names = [alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)]
        assert not [name for name in names if name.startswith(HEAVY)], f"{path.name} imports {names}"


@pytest.mark.parametrize("module", ["workbench.steps.psi_link", "workbench.report.linkage_truth"])
def test_loading_and_checking_a_linkage_recipe_loads_no_psi_library(module: str) -> None:
    script = (
        "import sys\nfrom pathlib import Path\n"
        f"import {module}\nfrom workbench.recipe import load_recipe\n"
        f"load_recipe(Path({str(PACKAGE.parents[2] / 'recipes' / 'linkage.yaml')!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('private_set_intersection', 'voprf')"
        " or m in ('workbench.crypto.psi', 'workbench.crypto.labeled_psi')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("reveal", "requester", "provider"),
    [
        ("requester", ["link_party", "link_pass", "matched"], None),
        ("both", ["link_party", "link_pass", "link_id", "matched"], ["link_party", "link_pass", "link_id"]),
        ("payload", ["link_party", "link_pass", "resting_hr", "matched"], None),
        ("cardinality", None, None),
    ],
)
def test_the_contract_declares_the_tables_the_mode_writes(reveal: str, requester: list[str] | None, provider: list[str] | None) -> None:
    declared = {
        "requester": {"table": "ehr", "id_column": "patient_id", "fields": {"phone": {"column": "phone"}}},
        "provider": {"table": "vitals", "fields": {"phone": {"column": "tel"}}},
        "passes": [{"name": "phone", "fields": ["phone"]}],
        "reveal": reveal,
        "payload_columns": ["resting_hr"] if reveal == "payload" else [],
        "keep_unmatched": reveal != "cardinality",
    }
    contract = psi_link.PsiLink(psi_link.PsiLinkParams.model_validate(declared)).contract()
    adds = {added.role.value: (list(added.columns), added.table, added.copies) for added in contract.adds}
    assert adds.get("hospital") == (None if requester is None else (requester, "linked", "ehr"))
    assert adds.get("data_provider") == (None if provider is None else (provider, "linked", "vitals"))
    reads = [(read.role.value, read.table, read.columns) for read in contract.reads]
    assert reads == [
        ("hospital", "ehr", ("patient_id",)),
        ("hospital", "ehr", ("phone",)),
        ("data_provider", "vitals", ("tel",)),
        *([("data_provider", "vitals", ("resting_hr",))] if reveal == "payload" else []),
    ]
