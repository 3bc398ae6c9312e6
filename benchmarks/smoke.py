"""What the benchmarks' `--smoke` runs share: sizes small enough that tests/test_benchmarks.py runs them all in seconds.

A smoke run checks that a benchmark still runs and prints its figures; the figures it prints measure nothing.
"""

from __future__ import annotations

import json

from workbench.data.cohort import CohortParams

SMALL_VENDOR = 300
"""Vendor customers who are no hospital's patients, in a smoke run's cohort."""


def small_cohort(dataset: str = "cohort", scale: float = 0.05, least: int = 60) -> list[str]:
    """`--set` overrides that shrink a recipe's synthetic cohort `dataset`: the default hospitals, `scale` of their patients."""
    hospitals = [hospital.model_copy(update={"patients": max(least, round(hospital.patients * scale))}).model_dump() for hospital in CohortParams().hospitals]
    return [f"datasets.{dataset}.hospitals={json.dumps(hospitals)}", f"datasets.{dataset}.vendor_only_people={SMALL_VENDOR}"]
