from __future__ import annotations

import numpy as np
import pytest

from workbench.context import StepContext
from workbench.crypto.masked_sum import masked_total
from workbench.crypto.secagg import SecAggError
from workbench.ledger import Ledger
from workbench.parties import COORDINATOR, PartyStore, Role, ScopedParties

SITES = ("north", "south", "west")


def _context() -> StepContext:
    stores = {site: PartyStore(site, Role.HOSPITAL) for site in SITES}
    return StepContext("evaluate", 0, ScopedParties(stores, SITES, "evaluate"), dict.fromkeys(SITES, Role.HOSPITAL), Ledger(), lambda event: None)


def test_the_coordinator_gets_the_exact_total_and_only_masked_vectors() -> None:
    ctx = _context()
    rng = np.random.default_rng(0)
    vectors = {site: rng.integers(-(2**45), 2**45, size=500) for site in SITES}
    total = masked_total(ctx, vectors, "pooled-test")
    assert np.array_equal(total, sum(vectors.values()))
    masked = [m for m in ctx.ledger.messages if m.kind == "pooled-test.masked"]
    assert sorted(m.sender for m in masked) == sorted(SITES) and {m.receiver for m in masked} == {COORDINATOR}
    assert {m.protection.value for m in masked} == {"masked"} and all(m.nbytes == 500 * 8 for m in masked)
    assert {m.protection.value for m in ctx.ledger.messages if m.kind == "pooled-test.shares"} == {"encrypted"}


def test_a_value_beyond_the_exact_range_is_refused_naming_the_site() -> None:
    vectors = {site: np.zeros(3, dtype=np.int64) for site in SITES}
    vectors["south"][1] = 2**51
    with pytest.raises(SecAggError, match="site 'south': a pooled-test value exceeds"):
        masked_total(_context(), vectors, "pooled-test")
