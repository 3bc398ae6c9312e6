"""What "the same run again" means once a recipe uses fresh keys or encryption randomness.

Plain steps repeat bit for bit from the recipe seed. PSI keys and CKKS
encryption randomness come from the operating system on purpose (a party that
knows the recipe must not be able to recompute them), so messages of those
steps differ in bytes from run to run, and values decrypted from CKKS agree to
CKKS precision, not bit for bit. Tests of reproducibility hold every part to
the strictest standard it can meet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workbench.contracts import Randomness
from workbench.recipe import Recipe

CKKS_TOLERANCE = {"rel": 1e-3, "abs": 1e-4}
"""Decrypted values carry CKKS noise (≤1e-6); compressed ciphertext sizes vary by up to ~1e-4 relative; and a figure
computed from ranks of an encrypted model's scores (an AUC and its paired difference) moves by a whole rank pair,
1/(positives x negatives), 1e-5 at the large hospital, when that noise swaps two scores (seen in a clean CI run)."""


def encrypted_names(recipe: Recipe) -> set[str]:
    """Names under which values that went through encryption are published: the inexact steps and the models they saved."""
    return {name for step, contract in recipe.contracts() if not contract.exact for name in (step, *contract.saves_models)}


def noisy_names(recipe: Recipe) -> set[str]:
    """Names under which values that carry fresh DP noise are published: the steps and the models they saved. They
    differ from run to run by design (noise every party could recompute would hide nothing), so only their shape repeats."""
    return {name for step, contract in recipe.contracts() if contract.randomness is Randomness.NOISE for name in (step, *contract.saves_models)}


def fresh_randomness_steps(recipe: Recipe) -> set[str]:
    """Steps whose messages carry fresh keys, encryption randomness or privacy noise, so their bytes differ from run to run."""
    return {step for step, contract in recipe.contracts() if contract.randomness in (Randomness.SEED_AND_SYSTEM, Randomness.NOISE)}


def assert_same_metrics(first: Path, second: Path, recipe: Recipe) -> None:
    """metrics.json of two runs: every value equal, except values that came through CKKS, equal to CKKS precision, and
    values that carry fresh DP noise, of the same shape."""
    _same(json.loads(first.read_text()), json.loads(second.read_text()), (), encrypted_names(recipe), noisy_names(recipe))


def assert_same_ledger(first: Path, second: Path, recipe: Recipe) -> None:
    """ledger.jsonl of two runs: the same messages in the same order; the same bytes wherever no fresh randomness is involved
    (in the step itself, or in the encrypted models an evaluate step scores)."""
    varying = encrypted_names(recipe) | noisy_names(recipe)
    scoring_varying = {step for step, contract in recipe.contracts() if varying & set(contract.reads_models)}
    randomized = fresh_randomness_steps(recipe) | scoring_varying
    a, b = ([json.loads(line) for line in path.read_text().splitlines()] for path in (first, second))
    assert len(a) == len(b)
    shape = ("seq", "step", "sender", "receiver", "kind", "protection", "row_level")
    for x, y in zip(a, b):
        assert {k: x[k] for k in shape} == {k: y[k] for k in shape}
        if x["step"] not in randomized:
            assert x == y


def _same(a: Any, b: Any, path: tuple[str, ...], encrypted: set[str], noisy: set[str]) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            _same(a[key], b[key], (*path, key), encrypted, noisy)
    elif isinstance(a, list) and noisy & set(path):
        assert isinstance(b, list), path  # e.g. a thinned ROC curve, whose points depend on the noised model's scores
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b)):
            _same(x, y, (*path, str(index)), encrypted, noisy)
    elif isinstance(a, int | float) and not isinstance(a, bool) and noisy & set(path):
        assert isinstance(b, int | float), path
    elif isinstance(a, float) and encrypted & set(path):
        assert b == pytest.approx(a, **CKKS_TOLERANCE), path
    else:
        assert a == b, path
