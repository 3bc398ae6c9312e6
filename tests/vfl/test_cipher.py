"""The slot layout puts several columns' partial sums in one ciphertext, and unpacks them to the right columns."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.crypto import ckks
from workbench.vfl.cipher import PARAMS, SLOTS, Encrypted, Layout


@pytest.mark.parametrize(
    ("longest", "columns", "block", "copies"),
    [(250, 17, 250, 16), (250, 3, 250, 3), (SLOTS // 2, 17, SLOTS // 2, 2), (SLOTS // 2 + 1, 17, SLOTS, 1), (10**5, 24, SLOTS, 1)],
)
def test_a_layout_fits_as_many_copies_as_the_slots_and_the_columns_allow(longest: int, columns: int, block: int, copies: int) -> None:
    assert Layout.for_rows(longest, columns) == Layout(block, copies)


@pytest.mark.parametrize("layout", [Layout(7, 3), Layout(SLOTS, 1)], ids=["three copies", "one copy"])
def test_the_slot_sums_of_replicated_vector_times_groups_are_the_inner_products(layout: Layout) -> None:
    rng = np.random.default_rng(0)
    rows = 5 if layout.copies > 1 else SLOTS + 9  # one copy: a vector spanning two ciphertexts
    vector, columns, clear = rng.normal(size=rows), rng.normal(size=(rows, 8)), rng.normal(size=8)

    def in_slots(values: np.ndarray) -> np.ndarray:
        return np.concatenate(ckks.slot_parts(values, SLOTS))

    # what `Encrypted.inner` computes under encryption: products slot by slot, folded over the ciphertexts
    products = [in_slots(group) * in_slots(layout.replicate(vector)) for group in layout.groups(columns)]
    folded = [product.reshape(-1, SLOTS).sum(axis=0) + first for product, first in zip(products, layout.first_slots(clear))]
    np.testing.assert_allclose(layout.sums(np.concatenate(folded), 8), columns.T @ vector + clear, atol=1e-12)


@pytest.mark.slow
def test_under_ckks_one_ciphertext_carries_every_columns_partial_sums_of_a_small_site() -> None:
    secret = ckks.secret_context(PARAMS)
    public = ckks.load_context(ckks.context_bytes(secret, secret=False))
    layout = Layout.for_rows(40, 6)
    at_arbiter, at_site = Encrypted(secret, layout), Encrypted(public, layout)
    rng = np.random.default_rng(1)
    residual, columns, clear = rng.normal(size=40), rng.normal(size=(40, 6)), rng.normal(size=6)
    partial = at_site.inner(at_arbiter.encrypt(layout.replicate(residual)), columns, clear)
    masked, mask = at_site.masked_sum([partial])
    assert len(ckks.unpack(masked, "partial sums")) == 1, "six columns in one ciphertext"
    opened = at_arbiter.decrypt(masked, len(mask))
    np.testing.assert_allclose(at_site.unmask(opened, mask, 6), columns.T @ residual + clear, atol=1e-5)
