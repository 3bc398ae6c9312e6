from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from tests.conftest import uci_recipe
from workbench.data.splits import split_part, stratified_folds, stratified_mask, validation_part
from workbench.models import model_key
from workbench.models.features import FeatureError, TableRef, design_matrix, label_vector
from workbench.models.metrics import roc_auc
from workbench.recipe import parse_recipe
from workbench.runner import RunResult, run_recipe
from workbench.steps.split import SplitParams


def test_each_class_is_held_out_in_proportion() -> None:
    y = np.r_[np.ones(50), np.zeros(950)]
    mask = stratified_mask(y, 0.3, np.random.default_rng(0))
    assert mask[y == 1].sum() == 15 and mask[y == 0].sum() == 285


def test_split_is_seeded() -> None:
    y = np.r_[np.ones(20), np.zeros(80)]
    first, again = (stratified_mask(y, 0.25, np.random.default_rng(5)) for _ in range(2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, stratified_mask(y, 0.25, np.random.default_rng(6)))


def test_split_step_marks_rows_at_each_site(flagship_run: RunResult) -> None:
    for site, summary in flagship_run.metrics["steps"]["split"].items():
        linked = flagship_run.stores[site].table("linked")
        deaths = linked["death_30d"]
        assert linked["is_test"].sum() == summary["test_rows"] == round(0.3 * deaths.sum()) + round(0.3 * (~deaths).sum())


def test_no_split_no_training() -> None:
    with pytest.raises(FeatureError, match="add a `split` step"):
        split_part(pl.DataFrame({"x": [1]}), TableRef("a", "t"), test=False)


VALIDATED = uci_recipe(
    "validated",
    """\
  - {kind: local_train, params: {label: heart_disease, features: {numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak]}}}
  - {kind: fl_train, params: {label: heart_disease, features: {numeric: [age, sex_male, cp_asymptomatic, thalch, oldpeak]}, rounds: 2}}
  - {kind: evaluate, name: choose, params: {label: heart_disease, models: [local, federated], part: validation}}
  - {kind: evaluate, name: score, params: {label: heart_disease, models: [local, federated]}}
""",
).replace("{kind: split, params: {label: heart_disease}}", "{kind: split, params: {label: heart_disease, validation_fraction: 0.2}}")


def test_validation_rows_are_neither_trained_on_nor_tested_and_score_the_rounds(tmp_path: Path) -> None:
    run = run_recipe(parse_recipe(VALIDATED), tmp_path / "run")
    for site in ("cleveland", "hungary"):
        table = run.stores[site].table("data")
        split = run.metrics["steps"]["split"][site]
        assert not (table["is_test"] & table["is_validation"]).any()
        assert table["is_validation"].sum() == split["validation_rows"] > 0
        assert run.metrics["steps"]["local_train"][site]["train_rows"] == split["rows"] - split["test_rows"] - split["validation_rows"]
        assert run.metrics["steps"]["choose"][site]["local"]["n"] == split["validation_rows"]
        assert run.metrics["steps"]["score"][site]["local"]["n"] == split["test_rows"]
        where = TableRef(site, "data")
        model = run.stores[site].get(model_key("federated"))
        rows = validation_part(table, where)
        last_round = run.metrics["steps"]["fl_train"]["aggregator"]["rounds"]["2"][site]
        assert last_round["auc"] == pytest.approx(
            roc_auc(label_vector(rows, "heart_disease", where), model.predict_proba(design_matrix(rows, model.features, where)))
        )


def test_fractions_that_leave_nothing_to_train_on_are_refused() -> None:
    with pytest.raises(ValidationError, match="leave no rows to train on"):
        SplitParams(label="y", test_fraction=0.5, validation_fraction=0.5)
    with pytest.raises(FeatureError, match="give the `split` step a validation_fraction"):
        validation_part(pl.DataFrame({"is_test": [True]}), TableRef("a", "t"))


def test_folds_cover_every_row_once_each_class_evenly() -> None:
    y = np.r_[np.ones(23), np.zeros(77)]
    fold = stratified_folds(y, 5, np.random.default_rng(0))
    assert np.bincount(fold).sum() == 100 and set(np.unique(fold)) == set(range(5))
    for value in (0, 1):  # each class dealt out evenly: fold sizes within one row of each other
        per_fold = np.bincount(fold[y == value], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1


def test_each_fold_and_repeat_holds_out_other_rows_and_the_manifest_says_how(tmp_path: Path) -> None:
    def held_out(*overrides: str) -> tuple[np.ndarray, str]:
        recipe = parse_recipe(uci_recipe("folds", ""), overrides=list(overrides))
        run = run_recipe(recipe, tmp_path / "-".join(overrides).replace("=", "").replace(".", "") / "run")
        return run.stores["hungary"].table("data")["is_test"].to_numpy(), run.manifest["steps"]["split"]["held_out_rows"]["hungary"]

    folds = [held_out("steps[split].params.folds=3", f"steps[split].params.fold={i}") for i in range(3)]
    assert (sum(mask.astype(int) for mask, _ in folds) == 1).all()  # every row held out in exactly one fold
    assert "fold 2 of 3 stratified folds" in folds[2][1]
    first, again, other = held_out(), held_out("steps[split].params.repeat=0"), held_out("steps[split].params.repeat=1")
    assert np.array_equal(first[0], again[0]) and not np.array_equal(first[0], other[0])
    assert "'repeat-1'" in other[1] and "recipe seed 1" in other[1]


def test_folds_refuse_a_test_fraction_and_a_fold_out_of_range() -> None:
    with pytest.raises(ValidationError, match="set test_fraction: null with folds"):
        SplitParams(label="y", folds=5, test_fraction=0.2)
    with pytest.raises(ValidationError, match="nothing would be held out"):
        SplitParams(label="y", test_fraction=None)
    assert SplitParams(label="y", folds=5, test_fraction=None).held_out() == 0.2
    with pytest.raises(ValidationError, match="use 0 to 4"):
        SplitParams(label="y", folds=5, fold=5)
