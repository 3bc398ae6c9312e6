"""The party boundary: a step reads only the stores of the parties it runs at."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from workbench.context import StepContext
from workbench.ledger import Protection
from workbench.parties import COORDINATOR, MissingItemError, PartyBoundaryError, PartyStore, Role, ScopedParties
from workbench.recipe import Recipe, parse_recipe
from workbench.runner import RunError, RunResult, run_recipe
from workbench.steps import REGISTRY, Step, StepParams, register


class PeekParams(StepParams):
    target: str


class Peek(Step[PeekParams]):
    """A step that tries to read a party it does not run at."""

    kind = "peek"
    Params = PeekParams
    roles = (Role.HOSPITAL,)

    def run(self, ctx: StepContext) -> None:
        ctx.store(self.params.target).table("vitals")


@pytest.fixture
def peek_registered() -> Iterator[None]:
    register(Peek)
    yield
    del REGISTRY[Peek.kind]


def _with_peek(flagship_path: Path, target: str) -> Recipe:
    """The flagship with a peeking step first, so the run stops before any real work."""
    raw = yaml.safe_load(flagship_path.read_text())
    raw["steps"].insert(0, {"kind": "peek", "at": ["county_hospital"], "params": {"target": target}})
    return parse_recipe(yaml.safe_dump(raw, sort_keys=False))


def test_a_step_cannot_read_another_partys_store(peek_registered: None, flagship_path: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match="may not read the store of 'vendor'") as caught:
        run_recipe(_with_peek(flagship_path, "vendor"), tmp_path / "run", base_dir=flagship_path.parent)
    assert isinstance(caught.value.__cause__, PartyBoundaryError)
    assert caught.value.user_error


def test_the_same_step_may_read_its_own_party(peek_registered: None, flagship_path: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match="party 'county_hospital' holds no table 'vitals'") as caught:
        run_recipe(_with_peek(flagship_path, "county_hospital"), tmp_path / "run", base_dir=flagship_path.parent)
    assert isinstance(caught.value.__cause__, MissingItemError)


def test_scoped_view_lists_only_allowed_parties() -> None:
    stores = {name: PartyStore(name, Role.HOSPITAL) for name in ("a", "b", "c")}
    view = ScopedParties(stores, ["a", "c"], "step")
    assert list(view) == ["a", "c"] and "b" not in view and len(view) == 2
    with pytest.raises(PartyBoundaryError, match="step 'step' runs at a, c"):
        view["b"]


def test_each_party_holds_only_its_own_part(light_flagship: Recipe, light_flagship_run: RunResult) -> None:
    stores = light_flagship_run.stores
    assert set(stores["general_hospital"].tables()) == {"ehr", "linked"}
    assert set(stores["vendor"].tables()) == {"vitals"}
    assert set(stores["rural_clinic"].tables()) == {"patients", "scored"}  # its own rows, and its own scores of them
    assert stores["aggregator"].tables() == {} and stores["key_holder"].tables() == {}
    sizes = {name: fp["rows"] for name, fp in light_flagship_run.manifest["data"].items()}
    loaded = {name: party.data.table for name, party in light_flagship.parties.items() if party.data}
    assert {name: stores[name].table(table).height for name, table in loaded.items()} == sizes


def test_ground_truth_never_enters_a_store(light_flagship_run: RunResult) -> None:
    for store in light_flagship_run.stores.values():
        for name, table in store.tables().items():
            assert "person_key" not in table.columns or store.role is Role.DATA_PROVIDER, (store.name, name)
            assert not {"hospital", "frailty", "noise"} & set(table.columns), (store.name, name)


def test_only_the_declared_oracle_moves_rows_in_the_clear(light_flagship_run: RunResult) -> None:
    """The pooled oracle is declared in the recipe; linkage moves per-record messages, but only blinded ones, and encrypted
    inference only ciphertexts."""
    row_level = [m for m in light_flagship_run.ledger.messages if m.row_level]
    clear = [m for m in row_level if m.protection is Protection.NONE]
    assert {(m.step, m.receiver, m.kind) for m in clear} == {("pooled_train", "oracle", "oracle.training_rows")}
    assert {m.sender for m in clear} == {"general_hospital", "county_hospital", "trauma_center"}
    blinded = [m for m in row_level if m.protection is not Protection.NONE]
    assert {(m.step, m.protection) for m in blinded} == {("link", Protection.BLINDED), ("encrypted_inference", Protection.CKKS)}
    assert {frozenset((m.sender, m.receiver)) for m in blinded} == {
        *(frozenset((site, "vendor")) for site in ("general_hospital", "county_hospital", "trauma_center")),
        frozenset(("rural_clinic", "general_hospital")),
    }


def test_baseline_steps_send_only_summaries_to_the_coordinator(light_flagship_run: RunResult) -> None:
    baseline = [m for m in light_flagship_run.ledger.messages if m.step in ("split", "local_train", "evaluate")]
    summaries = [m for m in baseline if m.kind != "model.parameters"]
    assert summaries and {(m.receiver, m.kind, m.row_level) for m in summaries} == {(COORDINATOR, "metrics.summary", False)}
    declared = sorted((m.step, m.sender, m.receiver, m.row_level) for m in baseline if m.kind == "model.parameters")  # evaluate's local@general_hospital
    assert declared == [("evaluate", "general_hospital", site, False) for site in ("county_hospital", "trauma_center")]
