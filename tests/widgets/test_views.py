"""Results and ledger views, and the scores they rest on, from a real flagship run."""

from __future__ import annotations

from workbench.events import MessageSent
from workbench.ledger import Message, Protection
from workbench.report.scores import key_metrics, site_scores
from workbench.runner import RunResult
from workbench.widgets import LedgerView, ResultsView, StepReports, chain_html
from workbench.widgets.ledger_view import flows


def test_scores_are_found_by_shape_for_every_site_and_model(flagship_run: RunResult, flagship) -> None:
    scored = site_scores(flagship_run.metrics)
    assert scored, "the flagship scores models per site"
    hospitals = [name for name, party in flagship.parties.items() if party.role.value == "hospital"]
    assert scored[-1].sites == hospitals
    assert "local" in scored[-1].models
    labels = [label for label, _ in key_metrics(flagship_run.metrics)]
    assert "AUC local" in labels
    means = dict(key_metrics(flagship_run.metrics))
    assert means["AUC local"] == sum(scored[-1].metric("auc")["local"]) / len(hospitals)


def test_non_score_results_are_not_mistaken_for_scores() -> None:
    assert site_scores({"steps": {"split": {"a": {"n_test": 3}}, "x": {}}}) == []


def test_results_view_shows_intervals_and_bolds_only_gains_the_paired_interval_shows() -> None:
    def shown(difference: float, significant: bool) -> dict[str, object]:
        return {"baseline": "local", "auc_difference": difference, "auc_difference_ci": [0, 0], "p_value": 0.5, "significant": significant}

    metrics = {
        "steps": {
            "evaluate": {
                "north": {
                    "local": {"auc": 0.70, "auc_ci": [0.6, 0.8], "n": 100, "positives": 9},
                    "federated": {"auc": 0.80, "auc_ci": [0.7, 0.9], "versus": shown(0.10, True)},
                    "pooled": {"auc": 0.85, "auc_ci": [0.75, 0.95], "versus": shown(0.15, False)},
                },
                "south": {"local": {"auc": 0.75, "n": 50, "positives": 4}, "federated": {"auc": 0.72, "versus": shown(-0.03, True)}, "pooled": {"auc": None}},
            }
        }
    }
    view = ResultsView(metrics)
    html = view.html.value
    assert "wb-results" in view._dom_classes
    for text in ("north", "south", "local", "federated", "pooled", "data:image/png;base64,", "0.700 [0.600, 0.800]", ">9<"):
        assert text in html
    assert "font-weight:600;'>0.800 [0.700, 0.900]" in html  # a shown gain
    assert "font-weight:600;'>0.850" not in html and "font-weight:600;'>0.720" not in html  # not shown; a loss


def test_ledger_view_totals_match_the_ledger(flagship_run: RunResult) -> None:
    grouped = flows([m.__dict__ for m in flagship_run.ledger.messages])
    assert sum(f["bytes"] for f in grouped) == flagship_run.ledger.total_bytes()
    assert sum(f["messages"] for f in grouped) == len(flagship_run.ledger.messages)
    view = LedgerView(flagship_run.out_dir)
    assert f"{len(flagship_run.ledger.messages)} messages" in view.html.value and "<svg" in view.html.value


def test_ledger_view_updates_live_from_message_events() -> None:
    view = LedgerView()
    assert "no messages yet" in view.html.value
    message = Message(
        seq=0,
        step="link",
        sender="vendor",
        receiver="clinic",
        kind="psi.response",
        nbytes=2048,
        protection=Protection.BLINDED,
        row_level=False,
        digest="0" * 64,
    )
    view(MessageSent(message=message))
    assert "vendor → clinic" in view.html.value and "blinded" in view.html.value and "1 messages" in view.html.value


def test_step_reports_and_chain_cover_every_step(flagship_run: RunResult, flagship) -> None:
    assert len(StepReports(flagship, flagship_run.metrics).children) == len(flagship.steps)
    html = chain_html(flagship)
    assert all(spec.kind in html for spec in flagship.steps)
