"""Recipe variants for side-by-side comparisons: the same pipeline with encrypted aggregation.

A comparison is only fair if nothing but the aggregation changes, so the
variant is derived from the recipe itself rather than kept as a second file
that could drift from it.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml

from workbench.recipe import Recipe, parse_recipe


def encrypted(recipe: Recipe, custody: Literal["clients", "key_holder"] = "clients", key_holder: str = "key_holder") -> Recipe:
    """Every fl_train step aggregating under CKKS, with a ckks_keys step of the given custody before the first."""
    raw: dict[str, Any] = yaml.safe_load(recipe.to_yaml())
    steps = raw["steps"]
    first = next(i for i, step in enumerate(steps) if step["kind"] == "fl_train")
    for step in steps:
        if step["kind"] == "fl_train":
            step["params"]["aggregation"] = "ckks"
    steps.insert(first, {"kind": "ckks_keys", "params": {"custody": custody}})
    if custody == "key_holder" and key_holder not in raw["parties"]:
        raw["parties"][key_holder] = {"role": "key_holder", "description": "Holds the only secret key; decrypts only masked sums."}
    return parse_recipe(yaml.safe_dump(raw, sort_keys=False))
