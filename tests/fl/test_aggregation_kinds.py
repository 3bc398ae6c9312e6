"""Aggregation as one object per kind: the registry, the protocol, and no decision by a kind's name anywhere else.

The check reads the syntax tree, not the text: a docstring or an error message that mentions `key_holder`
decides nothing, while `if plan.key_holder:` does. Outside `workbench/fl/aggregation/` it refuses
- a comparison with a kind's or a custody's name as a string (`aggregation == "ckks"`, `custody in ("clients", ...)`);
- a comparison or truth test of something called `aggregation`, `custody` or `key_holder` (`if plan.key_holder:`,
  `summary["custody"] == ...`), and a table indexed by one (`HANDLERS[p.aggregation]`); passing one to a
  function (`kind(p.aggregation)`) asks the registry and is what the rest of the code should do;
- a custody's name as a string anywhere but in an enum's members (`Role.KEY_HOLDER = "key_holder"` names a
  party's role: vocabulary, not a decision), e.g. `{"role": "key_holder"}` where `Role.KEY_HOLDER.value` is meant.
A kind's name as a plain string is caught in comparisons only: "none" is also ordinary text (`display="none"`)
and "ckks" also a ledger protection (`Protection.CKKS`, the protection colours of the ledger view).
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

import workbench
from workbench.fl.aggregation import KINDS, AggregationName, for_plan
from workbench.fl.aggregation.ckks import Custody
from workbench.fl.plan import FLPlan
from workbench.models.features import FeatureSpec
from workbench.models.model import ModelSpec
from workbench.parties import Role
from workbench.recipe import load_recipe
from workbench.variants import encrypted

ROOT = Path(workbench.__file__).parent
KIND_NAMES = set(KINDS)
CUSTODY_NAMES = set(get_args(Custody))
DECIDING = {"aggregation", "custody", "key_holder"}
ALLOWED = {
    "fl/aggregation": "the kinds themselves",
    "steps/ckks_keys.py": "provisions keys by custody: custody is this step's own parameter",
    "steps/secure_sum.py": "sums cohort statistics under the same keys and decrypts by custody: a protocol of its own that does "
    "not use the aggregation kinds yet",
    "chain.py": "the contract walk checks that keys provisioned under custody key_holder reach the key holder",
}
"""Code that may decide by custody, and why; everything else asks the aggregation kind."""


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self._exempt: set[int] = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any("Enum" in ast.unparse(base) for base in node.bases):  # members of an enum are its vocabulary
            self._exempt |= {id(n) for statement in node.body if isinstance(statement, ast.Assign) for n in ast.walk(statement.value)}
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant):  # a docstring
            self._exempt.add(id(node.value))
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:  # an f-string's text says, it does not decide
        self._exempt |= {id(part) for part in node.values if isinstance(part, ast.Constant)}
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for side in (node.left, *node.comparators):
            for constant in _strings(side):
                if constant in KIND_NAMES | CUSTODY_NAMES:
                    self.found.append((node.lineno, f"compares with {constant!r}"))
        self._deciding(node, "compares")
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        self._deciding(node.test, "branches on")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._deciding(node.test, "branches on")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        for value in node.values:
            self._deciding(value, "branches on")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _named(node.slice):
            self.found.append((node.lineno, f"looks up a table by {ast.unparse(node.slice)}"))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if node.value in CUSTODY_NAMES and id(node) not in self._exempt:
            self.found.append((node.lineno, f"uses the custody name {node.value!r}"))

    def _deciding(self, node: ast.AST, what: str) -> None:
        for part in _outside_calls(node):
            if _named(part):
                self.found.append((node.lineno, f"{what} {ast.unparse(part)}"))


def _strings(node: ast.AST) -> list[str]:
    elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def _named(node: ast.AST) -> bool:
    """`x.aggregation`, `summary["custody"]`, or a bare `key_holder`: a kind's or custody's name (not an object's property)."""
    if isinstance(node, ast.Attribute):
        return node.attr in DECIDING
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value in DECIDING
    return isinstance(node, ast.Name) and node.id in DECIDING


def _outside_calls(node: ast.AST) -> list[ast.AST]:
    """The expression's parts, not descending into calls' arguments (`kind(p.aggregation)` asks the registry) nor into the
    objects whose properties are read (`aggregation.exact` asks the kind)."""
    if isinstance(node, ast.Call):
        return _outside_calls(node.func)
    if isinstance(node, ast.Attribute):
        return [node, *([] if isinstance(node.value, ast.Name) else _outside_calls(node.value))]
    if isinstance(node, ast.Subscript):
        return [node, *_outside_calls(node.value)]
    return [node, *(p for child in ast.iter_child_nodes(node) for p in _outside_calls(child))]


def decisions(source: str) -> list[tuple[int, str]]:
    finder = _Finder()
    finder.visit(ast.parse(source))
    return sorted(set(finder.found))


def test_no_code_outside_the_kinds_decides_by_a_kind_or_custody_name() -> None:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if any(relative == allowed or relative.startswith(f"{allowed}/") for allowed in ALLOWED):
            continue
        if hits := decisions(path.read_text()):
            found[relative] = hits
    assert found == {}, "ask the aggregation kind (workbench.fl.aggregation) instead"


@pytest.mark.parametrize(
    ("snippet", "caught"),
    [
        ('if p.aggregation == "ckks": pass', True),
        ("x = 1 if plan.key_holder else 2", True),
        ('ok = summary["custody"] != other', True),
        ("handler = HANDLERS[p.aggregation]", True),
        ('if kind in ("none", "ckks"): pass', True),
        ('config = {"party": holder, "role": "key_holder"}', True),
        ('class Role(StrEnum):\n    KEY_HOLDER = "key_holder"', False),
        ('config = {"role": Role.KEY_HOLDER.value}', False),
        ("agg = kind(p.aggregation)\nif agg.exact and not agg.fresh_randomness: pass", False),
        ('raise ValueError(f"custody key_holder: {holder!r} is missing")', False),
        ('def f():\n    """Under custody key_holder the key holder decrypts."""', False),
        ('widget = Layout(display="none")', False),
    ],
)
def test_the_check_catches_decisions_and_lets_vocabulary_pass(snippet: str, caught: bool) -> None:
    assert bool(decisions(snippet)) is caught


def test_every_module_of_the_package_is_one_registered_kind() -> None:
    package = ROOT / "fl" / "aggregation"
    modules = {path.stem for path in package.glob("*.py") if path.stem not in {"__init__", "base"}}
    assert {sys.modules[kind.__module__].__name__.rsplit(".", 1)[-1] for kind in KINDS.values()} == modules
    assert set(get_args(AggregationName)) == KIND_NAMES
    assert len({kind.update_protection for kind in KINDS.values()}) == len(KINDS), "summaries name their kind by it"


def _plan(**changes: object) -> FLPlan:
    return FLPlan(
        server="aggregator",
        parties=["a", "b"],
        features=FeatureSpec(numeric=["x"]),
        label="y",
        model=ModelSpec(),
        rounds=1,
        local_epochs=1,
        learning_rate=0.1,
        batch_size=None,
        fraction_train=1.0,
        min_available_clients=2,
        seed=0,
        node_timeout=1.0,
        **changes,
    )


@pytest.mark.parametrize("changes", [{}, {"aggregation": "ckks"}, {"aggregation": "ckks", "key_holder": "holder"}, {"aggregation": "secagg"}])
def test_every_kind_as_a_plan_binds_it_implements_the_whole_protocol(changes: dict[str, object]) -> None:
    aggregation = for_plan(_plan(**changes))
    assert not inspect.isabstract(type(aggregation)) and aggregation.name == changes.get("aggregation", "none")
    assert list(aggregation.helpers()) == ([changes["key_holder"]] if "key_holder" in changes else [])


def test_fl_train_validates_without_flower_or_tenseal() -> None:
    """`workbench validate` needs fl_train's parameters, not Flower (~1.6 s to import) or TenSEAL (~1 s)."""
    probe = f"""
import sys, types
for heavy in ("flwr", "tenseal"):
    sys.modules[heavy] = None  # importing either now fails
steps = types.ModuleType("workbench.steps")
steps.__path__ = [{str(ROOT / "steps")!r}]
sys.modules["workbench.steps"] = steps  # the package imports every step kind; only fl_train's own imports are probed
from workbench.steps.fl_train import FLTrain, FLTrainParams
params = FLTrainParams.model_validate({{"label": "y", "features": {{"numeric": ["x"]}}, "aggregation": "ckks", "strategy": "fedadam"}})
FLTrain(params).contract()
FLTrain.summarize({{"aggregator": {{"rounds": {{}}, "dropped": {{}}, "runtime": "embedded", "strategy": "fedavg", "update_protection": "none"}}}})
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_variant_changes_the_aggregation_and_adds_what_the_kind_needs() -> None:
    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "uci_heart.yaml")
    for custody in CUSTODY_NAMES:
        variant = encrypted(recipe, custody)
        kinds = [step.kind for step in variant.steps]
        assert kinds.index("ckks_keys") == kinds.index("fl_train") - 1 and variant.steps[kinds.index("ckks_keys")].params.custody == custody
        assert {step.params.aggregation for step in variant.steps if step.kind == "fl_train"} == {"ckks"}
        holders = [name for name, party in variant.parties.items() if party.role is Role.KEY_HOLDER]
        assert holders == (["key_holder"] if custody == "key_holder" else []), custody
