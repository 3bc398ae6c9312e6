"""Recipe variants for side-by-side comparisons: the same pipeline with another aggregation.

A comparison is only fair if nothing but the aggregation changes, so the
variant is derived from the recipe itself rather than kept as a second file
that could drift from it.
"""

from __future__ import annotations

from typing import Any

import yaml

from workbench.fl.aggregation import kind
from workbench.fl.aggregation.ckks import CKKS, Custody
from workbench.recipe import Recipe, parse_recipe
from workbench.steps import REGISTRY


def with_aggregation(recipe: Recipe, aggregation: str, **options: Any) -> Recipe:
    """Every step that aggregates (has an `aggregation` parameter) aggregating as `aggregation`, with what that kind
    needs besides (`Aggregation.vary`, e.g. keys)."""
    raw: dict[str, Any] = yaml.safe_load(recipe.to_yaml())
    for step in raw["steps"]:
        if "aggregation" in REGISTRY[step["kind"]].Params.model_fields:
            step["params"]["aggregation"] = aggregation
    kind(aggregation).vary(raw, **options)
    return parse_recipe(yaml.safe_dump(raw, sort_keys=False))


def encrypted(recipe: Recipe, custody: Custody | None = None, key_holder: str | None = None) -> Recipe:
    """Every fl_train step aggregating under CKKS, with a ckks_keys step of the given custody (default: the hospitals hold the
    key) before the first, and a key-holder party (named as `CKKS.vary` says unless given) when custody needs one."""
    return with_aggregation(recipe, CKKS.name, custody=custody, holder=key_holder)
