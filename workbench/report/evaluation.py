"""The evaluate step's tables: scores with their intervals, calibration, and gains a reader may believe.

A gain is called a gain only where DeLong's paired interval of the AUC difference
excludes zero; elsewhere the table says the rows show no difference, whatever the
sign of the point estimate. Sites are listed smallest first, where the intervals
are widest and the claims most tempting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workbench.report.blocks import Table
from workbench.report.scores import POOLED_TEST, sites_of

GAIN, LOSS, UNSHOWN = "gain", "loss", "no difference shown"


def with_interval(value: float | None, interval: Sequence[float] | None, digits: int = 3) -> str | None:
    """`0.737 [0.521, 0.883]`: a figure as the report prints it; None (an empty cell) where the figure is undefined."""
    if value is None:
        return None
    if interval is None:
        return f"{value:.{digits}f}"
    low, high = interval
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def verdict(versus: Mapping[str, Any] | None) -> str:
    """What a paired comparison lets a reader say: a gain, a loss, or no difference shown at this level."""
    if not versus or not versus.get("significant"):
        return UNSHOWN
    return GAIN if versus["auc_difference"] > 0 else LOSS


def _by_size(results: Mapping[str, Any]) -> list[str]:
    return sorted(sites_of(results), key=lambda site: next(iter(results[site].values()))["n"])


def score_table(results: Mapping[str, Any]) -> Table:
    rows = [
        [
            site,
            model,
            s["n"],
            s["positives"],
            with_interval(s["auc"], s.get("auc_ci")),
            with_interval(s.get("auprc"), s.get("auprc_ci")),
            with_interval(s["brier"], s.get("brier_ci")),
            with_interval(s["accuracy"], s.get("accuracy_ci")),
            with_interval(s.get("sensitivity"), s.get("sensitivity_ci")),
            with_interval(s.get("specificity"), s.get("specificity_ci")),
            None if s.get("threshold") is None else f"{s['threshold']:.3f}" + (f" ({s['threshold_rule']['rule']})" if s.get("threshold_rule") else ""),
        ]
        for site in sites_of(results)
        for model, s in results[site].items()
    ]
    return Table(
        "Held-out performance per site, with 95 % intervals",
        ["site", "model", "n", "positives", "AUC", "AUPRC", "Brier", "accuracy", "sensitivity", "specificity", "threshold"],
        rows,
        note="Intervals cover the sampling of each site's held-out rows, not retraining: AUC by DeLong's variance on the logit "
        "scale, the others by a bootstrap that resamples positives and negatives separately. AUC is empty where a site's "
        "held-out rows hold a single class; its interval needs at least two rows of each. Accuracy, sensitivity and specificity "
        "at the threshold shown: declared, or chosen by its rule on the site's validation rows.",
    )


def calibration_table(results: Mapping[str, Any]) -> Table:
    def figure(value: float | None) -> str | None:
        return None if value is None else f"{value:.3f}"

    rows = [
        [site, model, figure(s.get("calibration_slope")), figure(s.get("calibration_intercept")), figure(s.get("ece"))]
        for site in sites_of(results)
        for model, s in results[site].items()
    ]
    return Table(
        "Calibration per site",
        ["site", "model", "calibration slope", "calibration intercept", "ECE"],
        rows,
        note="Slope 1 and intercept 0 are ideal: a slope below 1 means predictions too extreme, an intercept above 0 risks "
        "under-predicted. ECE: mean gap between predicted and observed risk over equal-width bins of predicted risk. "
        "Empty where a site's held-out rows hold one class or separate perfectly.",
    )


def gain_table(results: Mapping[str, Any]) -> Table:
    """Each model's AUC against the baseline's at each site, smallest site first, with the paired interval and verdict."""
    rows = []
    baseline = None
    for site in _by_size(results):
        for model, s in results[site].items():
            versus = s.get("versus")
            if versus is None and "versus" in s:  # a site whose rows allow no comparison (a class with fewer than 2 rows)
                rows.append([site, s["n"], s["positives"], model, with_interval(s["auc"], s.get("auc_ci")), None, None, None, UNSHOWN])
                continue
            if versus is None:
                baseline = model
                continue
            base = results[site][versus["baseline"]]
            rows.append(
                [
                    site,
                    s["n"],
                    s["positives"],
                    model,
                    with_interval(s["auc"], s.get("auc_ci")),
                    with_interval(base["auc"], base.get("auc_ci")),
                    with_interval(versus["auc_difference"], versus["auc_difference_ci"]),
                    f"{versus['p_value']:.3g}",
                    verdict(versus),
                ]
            )
    return Table(
        f"AUC gain over {baseline or 'the baseline'}, smallest site first",
        ["site", "held-out n", "positives", "model", "AUC", f"AUC {baseline or 'baseline'}", "difference [95 % CI]", "p", "verdict"],
        rows,
        note="DeLong's paired test on the same held-out rows. A difference is a gain or a loss only where its interval "
        "excludes zero; elsewhere these rows cannot tell the models apart, whatever the sign of the point estimate.",
    )


def pooled_table(results: Mapping[str, Any]) -> Table | None:
    """Scores on all sites' held-out rows together, from masked totals; None when the step did not pool."""
    pooled = results.get(POOLED_TEST)
    if not pooled:
        return None
    rows = [
        [
            model,
            s["n"],
            s["positives"],
            with_interval(s["auc"], s.get("auc_ci")),
            None if s.get("auc_binning_error") is None else f"±{s['auc_binning_error']:.1e}",
            None if s.get("auprc") is None else f"{s['auprc']:.3f}",
            with_interval(s["brier"], s.get("brier_ci")),
            with_interval(s["accuracy"], s.get("accuracy_ci")),
            f"{s['ece']:.3f}",
        ]
        for model, s in pooled.items()
    ]
    return Table(
        "Pooled test: every site's held-out rows together",
        ["model", "n", "positives", "AUC", "AUC binning bound", "AUPRC (binned)", "Brier", "accuracy", "ECE"],
        rows,
        note="From totals of per-site counts taken by masking: the coordinator reads only the sums over sites, no site's own "
        "and no prediction. The AUC of the joined rows lies within the binning bound of the AUC shown (pairs of rows that "
        "share one of the predicted-risk bins count one half). Intervals: DeLong on the logit scale from the same counts; "
        "Brier normal; accuracy Wilson.",
    )
