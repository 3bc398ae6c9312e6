"""Shamir sharing of 32-byte secrets over pycryptodome's GF(2^128), block by block."""

from __future__ import annotations

import itertools
import secrets

import pytest

from workbench.crypto import shamir


@pytest.mark.parametrize(("threshold", "count"), [(2, 2), (2, 3), (3, 5), (5, 5)])
def test_any_threshold_shares_reconstruct_a_32_byte_secret(threshold: int, count: int) -> None:
    secret = secrets.token_bytes(32)
    shares = shamir.split(secret, threshold, count)
    assert [shamir.index_of(share) for share in shares] == list(range(1, count + 1))
    assert all(len(share) == shamir.INDEX_BYTES + 32 for share in shares)
    for subset in itertools.combinations(shares, threshold):
        assert shamir.combine(subset, threshold) == secret
        assert shamir.combine(subset[::-1], threshold) == secret, "in any order"
    assert shamir.combine(shares, threshold) == secret, "more shares than needed: the first `threshold` distinct ones are used"


def test_one_share_too_few_is_refused_and_would_give_a_wrong_secret() -> None:
    secret = secrets.token_bytes(32)
    shares = shamir.split(secret, 3, 5)
    with pytest.raises(shamir.ShamirError, match="2 distinct shares cannot reconstruct a secret shared with threshold 3"):
        shamir.combine(shares[:2], 3)
    with pytest.raises(shamir.ShamirError, match="2 distinct shares"):
        shamir.combine([shares[0], shares[0], shares[1]], 3)  # a repeated share counts once
    for pair in itertools.combinations(shares, 2):  # interpolating t-1 shares anyway yields an unrelated value
        assert shamir.combine(pair, 2) != secret


def test_malformed_requests_are_refused() -> None:
    with pytest.raises(shamir.ShamirError, match="multiple of 16 bytes, got 31"):
        shamir.split(bytes(31), 2, 3)
    with pytest.raises(shamir.ShamirError, match="threshold 4 and count 3"):
        shamir.split(bytes(32), 4, 3)
    first, second = shamir.split(bytes(32), 2, 2), shamir.split(bytes(16), 2, 2)
    with pytest.raises(shamir.ShamirError, match="do not match"):
        shamir.combine([first[0], second[1]], 2)
