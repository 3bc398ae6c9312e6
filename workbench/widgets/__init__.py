"""Notebook widgets over the runner's events: recipe builder, run monitor, ledger, results and sweep views."""

from workbench.runner import default_run_dir
from workbench.widgets.builder import RecipeBuilder
from workbench.widgets.explain import StepReports, chain_html
from workbench.widgets.ledger_view import LedgerView
from workbench.widgets.monitor import RunMonitor
from workbench.widgets.results import ResultsView
from workbench.widgets.session import RecipeSession
from workbench.widgets.sweep_view import SweepView

__all__ = ["LedgerView", "RecipeBuilder", "RecipeSession", "ResultsView", "RunMonitor", "StepReports", "SweepView", "chain_html", "default_run_dir"]
