"""Aggregation kinds, one module each, by the recipe's `aggregation:` value.

Importing the package imports every module in it, and each registers its kind: a new kind is one new
module (and its test). Outside this package no code decides anything by a kind's name or its key
custody; tests/fl/test_aggregation_kinds.py holds the rest of the workbench to that.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Literal

from workbench.fl.aggregation.base import KINDS, Aggregation, AggregationError, for_plan, for_summary, kind

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

if TYPE_CHECKING:
    AggregationName = str  # kinds register when their modules load, so no checker can list them: any name
else:
    AggregationName = Literal[tuple(KINDS)]
    """Every registered kind's name, for the recipe's schema."""

__all__ = ["KINDS", "Aggregation", "AggregationError", "AggregationName", "for_plan", "for_summary", "kind"]
