"""secure_sum in whole runs: exact totals under both custodies, ckks on every hospital message, clear failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from workbench.context import StepContext
from workbench.crypto import ckks
from workbench.crypto import secure_sum as ss
from workbench.ledger import Ledger, Protection
from workbench.parties import ScopedParties
from workbench.recipe import RecipeError, parse_recipe
from workbench.runner import RunError, RunResult, run_recipe
from workbench.steps.secure_sum import SecureSum, SecureSumParams

HOSPITALS = ("general_hospital", "county_hospital", "trauma_center")
COLUMNS = ["age", "creatinine", "albumin", "emergency"]
STATISTICS: dict[str, Any] = {
    "table": "ehr",
    "rows": "train",
    "sum": COLUMNS,
    "sum_of_squares": COLUMNS,
    "histograms": [{"column": "age", "edges": [40, 60, 75, 90]}, {"column": "asa_class", "edges": [1, 2, 3, 4, 5]}],
}


def recipe_text(custody: str | None, statistics: dict[str, Any] = STATISTICS) -> str:
    parties: dict[str, Any] = {h: {"role": "hospital", "data": {"dataset": "cohort", "part": h, "table": "ehr"}} for h in HOSPITALS}
    parties["aggregator"] = {"role": "aggregator"}
    if custody == "key_holder":
        parties["key_holder"] = {"role": "key_holder"}
    steps: list[dict[str, Any]] = [{"kind": "split", "params": {"table": "ehr", "label": "death_30d", "test_fraction": 0.3}}]
    if custody:
        steps.append({"kind": "ckks_keys", "params": {"custody": custody}})
    steps.append({"kind": "secure_sum", "params": statistics})
    return yaml.safe_dump(
        {
            "name": "cohort-statistics",
            "seed": 5,
            "approvals": "not_required",
            "datasets": {"cohort": {"kind": "synthetic_cohort", "vendor_only_people": 100}},
            "parties": parties,
            "steps": steps,
        },
        sort_keys=False,
    )


@pytest.fixture(scope="module", params=["clients", "key_holder"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_recipe(parse_recipe(recipe_text(request.param)), tmp_path_factory.mktemp(request.param) / "run")


def published(run: RunResult) -> dict[str, Any]:
    (summary,) = run.metrics["steps"]["secure_sum"].values()
    return summary


def training_rows(run: RunResult, hospital: str) -> pl.DataFrame:
    return run.stores[hospital].table("ehr").filter(~pl.col("is_test"))


def test_totals_equal_the_plain_sums_of_the_sites(run: RunResult) -> None:
    summary, codec = published(run), ss.FixedPoint()
    frames = [training_rows(run, h) for h in HOSPITALS]
    pooled = pl.concat(frames)
    assert summary["count"] == len(pooled) and len(pooled) > 1000
    for column in COLUMNS:
        for statistic, power in (("sum", 1), ("sum_of_squares", 2)):

            def value(frame: pl.DataFrame, column: str = column, power: int = power) -> float:
                return float((frame[column].cast(pl.Float64) ** power).sum())

            exact = sum(codec.to_integer(value(frame)) for frame in frames)  # each site's value, rounded once to 2^-24
            assert summary[statistic][column] == codec.to_float([exact])[0], (statistic, column)
            assert summary[statistic][column] == pytest.approx(value(pooled), rel=1e-12, abs=len(frames) * 2.0**-25)
    ages = pooled["age"].to_numpy()
    expected = np.histogram(ages, [-np.inf, 40, 60, 75, 90, np.inf])[0]
    assert summary["histograms"]["age"]["counts"] == expected.tolist()
    assert sum(summary["histograms"]["asa_class"]["counts"]) == len(pooled)


def test_every_hospital_message_is_ckks(run: RunResult) -> None:
    messages = [m for m in run.ledger.messages if m.step == "secure_sum"]
    from_hospitals = [m for m in messages if m.sender in HOSPITALS and m.kind != "metrics.summary"]
    assert sorted(m.sender for m in from_hospitals if m.kind == "secure_sum.share") == sorted(HOSPITALS)
    assert {m.protection for m in from_hospitals} == {Protection.CKKS} and not any(m.row_level for m in messages)
    to_coordinator = [m for m in messages if m.receiver == "coordinator"]
    assert [m.kind for m in to_coordinator] == ["metrics.summary"], "only the totals reach the coordinator"


def test_custody_decides_who_decrypts(run: RunResult) -> None:
    messages = [m for m in run.ledger.messages if m.step == "secure_sum"]
    summary = published(run)
    if summary["custody"] == "clients":
        assert [(m.sender, m.receiver, m.kind, m.protection) for m in messages if m.sender == "aggregator"] == [
            ("aggregator", "general_hospital", "secure_sum.total", Protection.CKKS)
        ]
        assert not any(m.receiver == "key_holder" or m.protection is Protection.MASKED for m in messages)
    else:
        holder = [(m.sender, m.receiver, m.kind, m.protection) for m in messages if "key_holder" in (m.sender, m.receiver)]
        assert holder == [
            ("aggregator", "key_holder", "secure_sum.masked_total", Protection.CKKS),
            ("key_holder", "aggregator", "secure_sum.masked_decryption", Protection.MASKED),
        ]
        assert 0 < summary["statistical_distance"] < 1e-7


def test_report_tells_what_each_party_saw(run: RunResult) -> None:
    html = (run.out_dir / "report.html").read_text()
    assert "What each party saw" in html and "Histogram of &#39;age&#39;" in html
    custody = published(run)["custody"]
    assert f"Custody {custody}." in html
    mean = published(run)["sum"]["age"] / published(run)["count"]
    assert f"{mean:.4g}"[:4] in html


def test_missing_ckks_keys_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"steps\[1\]\.params: step 'secure_sum' \(secure_sum\) needs CKKS keys .* add a `ckks_keys` step"):
        parse_recipe(recipe_text(None))
    with pytest.raises(RunError, match="secure_sum needs CKKS keys, and 'aggregator' holds none: add a `ckks_keys` step before secure_sum"):
        run_recipe(parse_recipe(recipe_text(None), check_chain=False), tmp_path / "run")


def test_a_value_beyond_the_declared_range_names_it(tmp_path: Path) -> None:
    statistics = {**STATISTICS, "codec": {"value_bits": 20}}  # sum of squares of age at general_hospital is ~1e7 > 2^20
    with pytest.raises(RunError, match=r"sum_of_squares\[age\] at 'general_hospital' is .*outside the declared range ±2\^20"):
        run_recipe(parse_recipe(recipe_text("clients", statistics)), tmp_path / "run")


def test_nothing_to_sum_is_refused() -> None:
    with pytest.raises(ValueError, match="secure_sum has nothing to sum"):
        SecureSumParams.model_validate({"table": "ehr", "count": False})


class Wiretap(StepContext):
    """A network that flips one byte of the first share it carries: an active attacker between hospital and aggregator."""

    def send(self, sender: str, receiver: str, kind: str, payload: bytes, protection: Protection, *, row_level: bool = False) -> bytes:
        delivered = super().send(sender, receiver, kind, payload, protection, row_level=row_level)
        if kind == "secure_sum.share" and not getattr(self, "tampered", False):
            self.tampered = True
            altered = bytearray(delivered)
            altered[len(altered) // 2] ^= 0x01
            return bytes(altered)
        return delivered


def rerun(run: RunResult, context: type[StepContext] = StepContext) -> None:
    """secure_sum again over the stores a run left, outside the runner, so the network or a store can be changed."""
    stores = run.stores
    params = SecureSumParams.model_validate(STATISTICS)
    ctx = context(
        step="secure_sum",
        seed=5,
        parties=ScopedParties(stores, list(stores), "secure_sum"),
        roles={name: store.role for name, store in stores.items()},
        ledger=Ledger(),
        emit=lambda event: None,
    )
    SecureSum(params).run(ctx)


def test_a_tampered_share_is_a_clear_error(run: RunResult) -> None:
    with pytest.raises(ckks.CKKSError, match="tampered or truncated|not the integers they must be"):
        rerun(run, Wiretap)


def test_a_share_under_another_key_is_a_clear_error(run: RunResult) -> None:
    """A hospital encrypting under a key of its own (a stale or forged context) spoils the total, and decryption says so."""
    store = run.stores["county_hospital"]
    if published(run)["custody"] == "clients":
        item, other = ckks.SECRET_ITEM, ckks.context_bytes(ckks.secret_context(ckks.choose_parameters()), secret=True)
    else:
        item, other = ckks.PUBLIC_ITEM, ckks.context_bytes(ckks.secret_context(ckks.masking_parameters()), secret=False)
    original = store.get(item)
    store.put(item, other)
    try:
        with pytest.raises(ss.SecureSumError, match="not the integers they must be"):
            rerun(run)
    finally:
        store.put(item, original)


def test_the_flagships_cohort_statistics_are_the_exact_totals_of_the_training_rows(light_flagship_run: RunResult) -> None:
    run = light_flagship_run
    published = next(iter(run.metrics["steps"]["cohort_statistics"].values()))
    rows = [run.stores[site].table("linked").filter(~pl.col("is_test")) for site in ("general_hospital", "county_hospital", "trauma_center")]
    assert published["count"] == sum(r.height for r in rows)
    assert published["sum"]["death_30d"] == sum(int(r["death_30d"].sum()) for r in rows)
    assert published["sum_of_squares"]["age"] == sum(int((r["age"].cast(pl.Int64) ** 2).sum()) for r in rows)
    assert sum(published["histograms"]["age"]["counts"]) == published["count"]
    shares = [m for m in run.ledger.messages if m.step == "cohort_statistics" and m.kind == "secure_sum.share"]
    assert len(shares) == 3 and {m.protection.value for m in shares} == {"ckks"}
