"""The AUC chart shows every model at every site: its axis spans every value and interval, chance included."""

from __future__ import annotations

from workbench.report.figures import auc_axis, auc_interval_of, auc_intervals
from workbench.report.scores import SiteScores

SCORES = SiteScores(
    "evaluate",
    {
        "general_hospital": {"local": {"auc": 0.88, "auc_ci": [0.83, 0.91], "n": 1500, "positives": 69}, "federated": {"auc": 0.89, "auc_ci": [0.84, 0.92]}},
        "trauma_center": {"local": {"auc": 0.425, "auc_ci": [0.21, 0.66], "n": 120, "positives": 6}, "federated": {"auc": 0.74}},
    },
)


def test_the_axis_spans_a_model_worse_than_chance_and_its_whole_interval() -> None:
    low, high = auc_axis(SCORES)
    assert low < 0.21 and high >= 0.92 and 0.0 <= low and high <= 1.02


def test_a_point_without_an_interval_is_drawn_as_a_point_and_a_missing_auc_not_at_all() -> None:
    assert auc_interval_of(SCORES, "trauma_center", "federated") == (0.74, 0.74, 0.74)
    assert auc_interval_of(SiteScores("e", {"a": {"m": {"auc": None}}}), "a", "m") is None


def test_the_chart_renders_as_png() -> None:
    assert auc_intervals(SCORES).startswith(b"\x89PNG")
