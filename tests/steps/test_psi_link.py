from __future__ import annotations

import hashlib
import inspect
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from workbench.context import StepContext
from workbench.crypto import labeled_psi, psi
from workbench.data.cohort import CohortParams, generate_cohort
from workbench.data.normalize import LinkageInputError
from workbench.data.payload import PayloadCodec
from workbench.ledger import Ledger, Protection
from workbench.parties import PartyStore, Role, ScopedParties
from workbench.recipe import load_recipe, parse_recipe
from workbench.recipe_problems import RecipeError
from workbench.report.blocks import Table
from workbench.report.html import number_cell, step_blocks
from workbench.report.linkage_truth import SIMULATION_TRUTH
from workbench.runner import RunError, RunResult, run_recipe
from workbench.steps.psi_link import PsiLink, PsiLinkParams

from ..conftest import RECIPES

LINKAGE = yaml.safe_load((RECIPES / "linkage.yaml").read_text())
LINK_PARAMS: dict[str, Any] = LINKAGE["steps"][0]["params"]
"""The demo recipe's declarations (both sides' columns and formats, three passes), reused by the small tests."""
VITALS = ["resting_hr", "daily_steps", "sleep_hours", "spo2"]
SMALL_COHORT = {
    "kind": "synthetic_cohort",
    "id_noise": 0.3,
    "vendor_only_people": 150,
    "hospitals": [
        {"name": "north", "patients": 90, "emergency_rate": 0.2, "mean_age": 60, "risk_shift": 0, "vendor_coverage": 0.6},
        {"name": "south", "patients": 60, "emergency_rate": 0.4, "mean_age": 65, "risk_shift": 0, "vendor_coverage": 0.5},
    ],
}
SEED = 11


def _params(**changes: Any) -> dict[str, Any]:
    return {**LINK_PARAMS, "workers": 1, **changes}


def _small_recipe(**changes: Any) -> str:
    return yaml.safe_dump(
        {
            "name": "small-linkage",
            "seed": SEED,
            "approvals": "not_required",
            "datasets": {"cohort": SMALL_COHORT},
            "parties": {
                "north": {"role": "hospital", "data": {"dataset": "cohort", "part": "north", "table": "ehr"}},
                "south": {"role": "hospital", "data": {"dataset": "cohort", "part": "south", "table": "ehr"}},
                "vendor": {"role": "data_provider", "data": {"dataset": "cohort", "part": "vendor", "table": "vitals"}},
            },
            "steps": [{"kind": "psi_link", "name": "link", "params": _params(**changes)}],
        }
    )


def _small_run(tmp_path: Path, **changes: Any) -> RunResult:
    return run_recipe(parse_recipe(_small_recipe(**changes)), tmp_path / "run")


@pytest.fixture(scope="module")
def small() -> Any:
    return generate_cohort(CohortParams.model_validate({k: v for k, v in SMALL_COHORT.items() if k != "kind"}), SEED)


def _true_pairs(cohort: Any, hospital: str) -> set[tuple[str, str]]:
    links = cohort.truth.links.filter(pl.col("hospital") == hospital)
    return set(zip(links["patient_id"], links["person_key"]))


# --- what each reveal mode leaves in each store ----------------------------------------------------


def test_reveal_requester_gives_the_hospital_its_matched_rows_and_the_vendor_nothing(tmp_path: Path, small: Any) -> None:
    run = _small_run(tmp_path, reveal="requester", payload_columns=[])
    for hospital in ("north", "south"):
        stores = run.stores[hospital].tables()
        assert set(stores) == {"ehr", "linked"}
        linked = stores["linked"]
        assert linked.columns == [*small.parts[hospital].columns, "link_party", "link_pass"]
        assert set(linked["patient_id"]) == {p for p, _ in _true_pairs(small, hospital)}
        assert linked.drop("link_party", "link_pass").equals(small.parts[hospital].filter(pl.col("patient_id").is_in(linked["patient_id"].implode())))
    assert set(run.stores["vendor"].tables()) == {"vitals"} and run.stores["vendor"].table("vitals").equals(small.parts["vendor"])


def test_reveal_both_aligns_the_records_at_both_sides_by_link_id(tmp_path: Path, small: Any) -> None:
    run = _small_run(tmp_path, reveal="both", payload_columns=[])
    vendor_linked = run.stores["vendor"].table("linked")
    assert vendor_linked.columns == [*small.parts["vendor"].columns, "link_party", "link_pass", "link_id"]
    for hospital in ("north", "south"):
        mine = run.stores[hospital].table("linked")
        theirs = vendor_linked.filter(pl.col("link_party") == hospital)
        aligned = mine.join(theirs, on="link_id", suffix="_vendor")
        assert aligned.height == mine.height == theirs.height
        assert set(zip(aligned["patient_id"], aligned["person_key"])) == _true_pairs(small, hospital)
        assert (aligned["link_pass"] == aligned["link_pass_vendor"]).all()
    assert run.stores["vendor"].table("vitals").equals(small.parts["vendor"])


def test_reveal_payload_gives_the_hospital_the_vitals_of_its_matches_only(tmp_path: Path, small: Any) -> None:
    run = _small_run(tmp_path)
    for hospital in ("north", "south"):
        linked = run.stores[hospital].table("linked")
        assert linked.columns == [*small.parts[hospital].columns, "link_party", "link_pass", *VITALS]
        truth = pl.DataFrame(sorted(_true_pairs(small, hospital)), schema=["patient_id", "person_key"], orient="row")
        expected = truth.join(small.parts["vendor"], on="person_key").select("patient_id", *VITALS).sort("patient_id")
        assert linked.select("patient_id", *VITALS).sort("patient_id").equals(expected)
    assert set(run.stores["vendor"].tables()) == {"vitals"} and run.stores["vendor"].table("vitals").equals(small.parts["vendor"])


def test_keep_unmatched_keeps_every_row_in_order_with_payload_only_for_matches(tmp_path: Path, small: Any) -> None:
    run = _small_run(tmp_path, keep_unmatched=True)
    for hospital in ("north", "south"):
        linked = run.stores[hospital].table("linked")
        ehr = small.parts[hospital]
        assert linked.columns == [*ehr.columns, "link_party", "link_pass", *VITALS, "matched"]
        assert linked.select(ehr.columns).equals(ehr), "every row, in the hospital's own order, unchanged"
        matched = set(linked.filter(pl.col("matched"))["patient_id"])
        assert matched == {p for p, _ in _true_pairs(small, hospital)} and 0 < len(matched) < ehr.height
        unmatched = linked.filter(~pl.col("matched"))
        assert unmatched.select("link_pass", *VITALS).null_count().row(0) == (unmatched.height,) * (1 + len(VITALS))
    with pytest.raises(ValueError, match="keep_unmatched needs an output table"):
        PsiLinkParams.model_validate(_params(reveal="cardinality", payload_columns=[], keep_unmatched=True, passes=[{"name": "exact", "fields": ["phone"]}]))


def test_reveal_cardinality_leaves_every_store_as_it_was(tmp_path: Path, small: Any) -> None:
    exact = [{"name": "exact", "fields": ["given_name", "family_name", "birth_date", "sex", "phone"]}]
    run = _small_run(tmp_path, reveal="cardinality", payload_columns=[], passes=exact)
    for party in ("north", "south", "vendor"):
        assert len(run.stores[party].tables()) == 1
    published, scored = run.metrics["steps"]["link"], run.metrics[SIMULATION_TRUTH]["link"]
    assert set(published) == {"north", "south", "vendor"}, "the simulation's scores are no party's result"
    for hospital in ("north", "south"):
        assert 0 < published[hospital]["linked"] == scored[hospital]["correct"] < len(_true_pairs(small, hospital))
    with pytest.raises(ValueError, match="cardinality takes exactly one pass"):
        PsiLinkParams.model_validate(_params(reveal="cardinality", payload_columns=[]))


def test_same_recipe_and_seed_give_the_same_metrics_and_tables(tmp_path: Path) -> None:
    """Keys are fresh every session, yet what is learned, and so metrics.json, is the same (link ids come from the seed)."""
    first, second = (run_recipe(parse_recipe(_small_recipe(reveal="both", payload_columns=[])), tmp_path / name) for name in ("a", "b"))
    assert (first.out_dir / "metrics.json").read_bytes() == (second.out_dir / "metrics.json").read_bytes()
    assert first.stores["vendor"].table("linked").equals(second.stores["vendor"].table("linked"))
    assert [m.digest for m in first.ledger.messages] != [m.digest for m in second.ledger.messages]  # fresh keys: other bytes


# --- the ledger ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reveal", ["requester", "payload", "cardinality"])
def test_the_ledger_holds_every_byte_the_protocols_produced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reveal: str) -> None:
    produced: list[bytes] = []

    def capture(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            produced.append(out)
            return out

        static = isinstance(inspect.getattr_static(owner, name), staticmethod)
        monkeypatch.setattr(owner, name, staticmethod(wrapper) if static else wrapper)

    for owner, name in (
        (psi.PsiClient, "request"),
        (psi.PsiServer, "process"),
        (psi.PsiServer, "setup"),
        (psi.PsiServer, "raw_setup"),
        (labeled_psi.LabeledPsiReceiver, "declaration"),
        (labeled_psi.LabeledPsiReceiver, "request"),
        (labeled_psi.LabeledPsiSender, "table"),
        (labeled_psi, "_evaluate"),
        (PayloadCodec, "schema"),
    ):
        capture(owner, name)
    passes = LINK_PARAMS["passes"] if reveal != "cardinality" else LINK_PARAMS["passes"][:1]
    run = _small_run(tmp_path, reveal=reveal, payload_columns=VITALS if reveal == "payload" else [], passes=passes)
    messages = [m for m in run.ledger.messages if m.step == "link" and m.kind != "metrics.summary"]
    assert Counter(m.digest for m in messages) == Counter(hashlib.sha256(p).hexdigest() for p in produced)
    assert sum(m.nbytes for m in messages) == sum(map(len, produced)) > 0
    assert {m.kind for m in messages} <= {"psi.setup", "psi.request", "psi.response", "psi.payload", "psi.schema"}
    assert all(m.protection is Protection.BLINDED for m in messages if m.row_level)
    summaries = [m for m in run.ledger.messages if m.kind == "metrics.summary"]
    assert {m.sender for m in summaries} == {"north", "south", "vendor"} and not any(m.row_level for m in summaries)


# --- the flagship cohort ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linkage_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_recipe(load_recipe(RECIPES / "linkage.yaml"), tmp_path_factory.mktemp("linkage") / "run")


def test_linkage_recipe_links_the_flagship_cohort(flagship: Any) -> None:
    """The same cohort and parties, but the flagship's clinic: drawn from a stream of its own, it changes no linked part."""
    recipe = load_recipe(RECIPES / "linkage.yaml")
    linked_parts = {name: source.model_copy(update={"clinics": []}) for name, source in flagship.datasets.items()}
    assert recipe.datasets == linked_parts and recipe.seed == flagship.seed
    assert {name: p.data for name, p in recipe.parties.items()} == {name: p.data for name, p in flagship.parties.items() if p.data and p.role != "clinic"}


def test_multi_pass_linkage_finds_nearly_every_true_link_and_no_false_one(linkage_run: RunResult) -> None:
    scores = linkage_run.metrics[SIMULATION_TRUTH]["link"]
    exact = linkage_run.metrics[SIMULATION_TRUTH]["link_exact"]
    assert set(scores) == {"general_hospital", "county_hospital", "trauma_center"}
    for step in ("link", "link_exact"):  # what the parties published holds nothing of the truth
        assert set(linkage_run.metrics["steps"][step]) == {"general_hospital", "county_hospital", "trauma_center", "vendor"}
    total = {key: sum(s[key] for s in scores.values()) for key in ("true_links", "linked", "correct")}
    assert total["correct"] / total["true_links"] >= 0.98 and total["correct"] / total["linked"] >= 0.999
    exact_recall = sum(s["correct"] for s in exact.values()) / total["true_links"]
    assert exact_recall < total["correct"] / total["true_links"] - 0.05
    for hospital, s in scores.items():
        assert s["recall"] >= 0.98 and s["precision"] >= 0.999
        assert s["passes"][0]["recall"] < s["passes"][-1]["recall"] == s["recall"]  # later passes add links
        assert exact[hospital]["recall"] < s["recall"] - 0.03
        assert linkage_run.stores[hospital].table("linked").height == s["linked"]


def test_the_report_shows_passes_overall_scores_and_disclosure(linkage_run: RunResult) -> None:
    recipe = load_recipe(RECIPES / "linkage.yaml")
    blocks = step_blocks(recipe, linkage_run.metrics)["link"]
    titles = [block.title for block in blocks]
    assert titles[:2] == ["Linkage per pass", "Linkage overall"] and titles[-1] == "What each party learned"
    per_pass, overall = blocks[0], blocks[1]
    assert isinstance(per_pass, Table) and isinstance(overall, Table)
    assert [row[1] for row in per_pass.rows[:3]] == ["name_dob", "dob_phone", "name_phone"]
    # the simulation's scores, kept apart in metrics.json, fill the report's precision and recall columns
    scores = linkage_run.metrics[SIMULATION_TRUTH]["link"]
    assert [row[-2:] for row in per_pass.rows] == [[r["precision"], r["recall"]] for s in scores.values() for r in s["passes"]]
    assert {row[0]: row[-3:] for row in overall.rows} == {party: [s["true_links"], s["precision"], s["recall"]] for party, s in scores.items()}
    assert all(value is not None for row in per_pass.rows for value in row[-2:])
    unscored = PsiLink.summarize(linkage_run.metrics["steps"]["link"])  # what the parties published alone: no scores
    assert [row[:-2] for row in unscored[0].rows] == [row[:-2] for row in per_pass.rows]  # type: ignore[union-attr]
    assert all(row[-2:] == [None, None] for row in unscored[0].rows)  # type: ignore[union-attr]
    learned = " ".join(blocks[-1].paragraphs)  # type: ignore[union-attr]
    assert "general_hospital learned which 3000 of its 5000 records vendor also holds and vendor's payload columns" in learned
    assert "vendor learned only the number of records general_hospital queried in each pass (5000, " in learned
    html = (linkage_run.out_dir / "report.html").read_text()
    assert "Linkage per pass" in html and "What each party learned" in html
    assert f'<td class="num">{number_cell(scores["general_hospital"]["passes"][0]["recall"])}</td>' in html


# --- bad input -------------------------------------------------------------------------------------


def _stores(small: Any, **replace: pl.DataFrame) -> dict[str, PartyStore]:
    stores = {}
    for party, role, table in (("north", Role.HOSPITAL, "ehr"), ("south", Role.HOSPITAL, "ehr"), ("vendor", Role.DATA_PROVIDER, "vitals")):
        stores[party] = PartyStore(party, role)
        stores[party].put_table(table, replace.get(party, small.parts[party]))
    return stores


def _link(stores: dict[str, PartyStore], ledger: Ledger | None = None, **changes: Any) -> None:
    ctx = StepContext(
        step="link",
        seed=0,
        parties=ScopedParties(stores, list(stores), "link"),
        roles={name: store.role for name, store in stores.items()},
        ledger=ledger or Ledger(),
        emit=lambda event: None,
    )
    PsiLink(PsiLinkParams.model_validate(_params(**changes))).run(ctx)


def _fails(small: Any, match: str, replace: dict[str, pl.DataFrame] | None = None, **changes: Any) -> Ledger:
    """Run the step into an error; check that no store changed, and return the ledger of what was sent before it."""
    stores, ledger = _stores(small, **(replace or {})), Ledger()
    before = {party: store.tables() for party, store in stores.items()}
    with pytest.raises(LinkageInputError, match=match):
        _link(stores, ledger, **changes)
    assert {party: store.tables() for party, store in stores.items()} == before  # no partial link table anywhere
    return ledger


def test_duplicate_records_are_refused_on_either_side(small: Any) -> None:
    south = small.parts["south"]
    _fails(small, r"party 'south', table 'ehr': 1 record\(s\) repeat an id in column 'patient_id'", {"south": pl.concat([south, south.head(1)])})
    vendor = small.parts["vendor"]
    _fails(small, r"party 'vendor', table 'vitals': 2 record\(s\) repeat an id", {"vendor": pl.concat([vendor, vendor.head(2)])})


def test_records_sharing_a_key_are_refused_or_skipped_as_declared(small: Any) -> None:
    south = small.parts["south"]
    twin = south.head(1).with_columns(patient_id=pl.lit("SO-999999"))
    _fails(
        small,
        r"party 'south', table 'ehr': 2 records share their key in pass 'name_dob' \(columns given_name, family_name, birth_date, sex\)"
        r".*set duplicates: skip",
        {"south": pl.concat([south, twin])},
        duplicates="error",
    )
    stores = _stores(small, south=pl.concat([south, twin]))
    _link(stores, duplicates="skip")
    assert "SO-999999" not in stores["south"].table("linked")["patient_id"].to_list()


def test_empty_tables_and_empty_intersections_are_named(small: Any) -> None:
    _fails(small, r"party 'north', table 'ehr' has no rows", {"north": small.parts["north"].clear()})
    strangers = small.parts["vendor"].join(small.truth.links.select("person_key"), on="person_key", how="anti")
    ledger = _fails(
        small,
        r"no record of party 'north' matched party 'vendor' in any pass \(name_dob, dob_phone, name_phone\); check that both sides",
        {"vendor": strangers},
    )
    assert {m.kind for m in ledger.messages} == {"psi.schema", "psi.setup", "psi.payload", "psi.request", "psi.response"}  # it ran, found nothing


def test_missing_and_all_null_key_columns_are_named_and_nothing_is_written(small: Any) -> None:
    # north would link fine; south fails: every party checks its input before anything is sent
    ledger = _fails(
        small, r"party 'south', table 'ehr': field 'phone' reads column 'phone', which the table does not have", {"south": small.parts["south"].drop("phone")}
    )
    assert ledger.messages == ()
    _fails(
        small,
        r"party 'vendor', table 'vitals': column 'family_name' \(family_name\) is entirely null",
        {"vendor": small.parts["vendor"].with_columns(family_name=pl.lit(None, pl.Utf8))},
    )


def test_non_utf8_identifiers_are_named(small: Any) -> None:
    north = small.parts["north"].with_columns(pl.col("family_name").cast(pl.Binary))
    broken = north.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(b"M\xfcller")).otherwise(pl.col("family_name")).alias("family_name"))
    _fails(small, r"party 'north', table 'ehr': column 'family_name' holds bytes that are not valid UTF-8 in 1 of 90 rows", {"north": broken})


def test_mismatched_normalisation_between_the_sides_is_named(small: Any) -> None:
    provider = {**LINK_PARAMS["provider"], "fields": {**LINK_PARAMS["provider"]["fields"], "birth_date": {"column": "birth_date", "type": "exact"}}}
    _fails(
        small,
        r"field 'birth_date' is normalised differently: party 'north' column 'birth_date' as date, party 'vendor' column 'birth_date' as exact",
        provider=provider,
    )
    provider = {**LINK_PARAMS["provider"], "fields": {**LINK_PARAMS["provider"]["fields"], "birth_date": {"column": "birth_date", "type": "date"}}}
    _fails(
        small,
        r"party 'vendor', table 'vitals': column 'birth_date' \(birth_date\): 234 of 234 values are not dates written as %Y-%m-%d "
        r"\(they look like 99/99/9999\)",
        provider=provider,
    )


def test_linkage_errors_reach_the_user_as_messages(tmp_path: Path) -> None:
    """Validation refuses them from the step's contract; a recipe run unchecked fails in the step with the same cause, as a message."""
    recipe = _small_recipe(requester={**LINK_PARAMS["requester"], "table": "missing"})
    with pytest.raises(RecipeError, match=r"steps\[0\].params.requester.table: no table 'missing' at 'north', 'south' when step 'link' \(psi_link\) runs"):
        parse_recipe(recipe)
    with pytest.raises(RunError, match="step 'link' \\(psi_link\\) failed: party 'north' holds no table 'missing'") as error:
        run_recipe(parse_recipe(recipe, check_chain=False), tmp_path / "run")
    assert error.value.user_error
    recipe = _small_recipe(requester={**LINK_PARAMS["requester"], "id_column": "nope"})
    with pytest.raises(RecipeError, match=r"steps\[0\].params.requester.id_column: table 'ehr' at 'north', 'south' has no column\(s\) nope"):
        parse_recipe(recipe)
    with pytest.raises(RunError, match="id_column 'nope' is not in the table") as error:
        run_recipe(parse_recipe(recipe, check_chain=False), tmp_path / "run2")
    assert error.value.user_error


def test_a_party_with_its_own_columns_declares_them(small: Any) -> None:
    south = small.parts["south"].rename({"phone": "telephone"})
    own = {**LINK_PARAMS["requester"], "fields": {**LINK_PARAMS["requester"]["fields"], "phone": {"column": "telephone", "type": "phone", "last_digits": 10}}}
    stores = _stores(small, south=south)
    _link(stores, per_party={"south": own})
    assert stores["south"].table("linked").height == len(_true_pairs(small, "south"))
    _fails(small, r"per_party names 'west', which this step does not run at \(north, south, vendor\)", per_party={"west": own})


def test_params_are_checked_when_the_recipe_loads() -> None:
    with pytest.raises(ValueError, match="reveal payload needs payload_columns"):
        PsiLinkParams.model_validate(_params(payload_columns=[]))
    with pytest.raises(ValueError, match="payload_columns only apply to reveal payload"):
        PsiLinkParams.model_validate(_params(reveal="both"))
    with pytest.raises(ValueError, match="pass names must be unique"):
        PsiLinkParams.model_validate(_params(passes=[{"name": "a", "fields": ["sex"]}, {"name": "a", "fields": ["phone"]}]))
    with pytest.raises(ValueError, match="would overwrite a linked table"):
        PsiLinkParams.model_validate(_params(into="ehr"))


@pytest.mark.slow
def test_a_script_piped_to_python_links_in_one_process(tmp_path: Path) -> None:
    """Spawned workers cannot re-import a __main__ read from standard input; the step then runs without them."""
    script = (
        f"from pathlib import Path\nfrom workbench.recipe import parse_recipe\nfrom workbench.runner import run_recipe\n"
        f"run = run_recipe(parse_recipe({_small_recipe(workers=2)!r}), Path({str(tmp_path / 'run')!r}))\n"
        "print(run.metrics['steps']['link']['north']['linked'])\n"
    )
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 0


def test_the_provider_caps_what_each_requester_may_query_and_the_report_says_so(tmp_path: Path) -> None:
    run = _small_run(tmp_path, reveal="requester", payload_columns=[], max_queries_per_requester=1000)
    links = run.metrics["steps"]["link"]["vendor"]["links"]
    assert {party: link["evaluation_cap"] for party, link in links.items()} == {"north": 1000, "south": 1000}
    assert 90 <= links["north"]["evaluations"] <= 3 * 90, "every pass's queries are charged"
    assert "under its cap of 1000 per requester" in (run.out_dir / "report.html").read_text()
    with pytest.raises(RunError, match="'vendor' refuses to evaluate 90 identifiers for 'north': its cap is 50") as error:
        _small_run(tmp_path / "capped", reveal="payload", max_queries_per_requester=50)
    assert error.value.user_error
