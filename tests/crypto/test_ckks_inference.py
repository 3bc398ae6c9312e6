"""Encrypted scoring: every logit to 1e-4, a holder that cannot decrypt, and replies that say no more than the declared rows' logits."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.crypto import ckks
from workbench.crypto import ckks_inference as ci

PRECISION = 1e-4


@pytest.fixture(scope="module")
def keys() -> tuple[object, object]:
    secret = ckks.secret_context(ci.inference_parameters(PRECISION))
    return secret, ckks.load_context(ckks.context_bytes(secret, secret=False))


def rows_and_model(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Raw clinical ranges (counts in the tens of thousands beside 0/1 flags) and a model whose logits span ±6."""
    rng = np.random.default_rng(seed)
    centre, spread = rng.choice([0.5, 60.0, 6000.0], d), rng.choice([0.5, 10.0, 2000.0], d)
    X = centre + spread * rng.normal(size=(n, d))
    weights = rng.normal(size=d) / spread
    return X, weights, float(-weights @ centre)


def test_parameters_are_the_smallest_ring_the_128_bit_table_admits_for_the_precision() -> None:
    params = ci.inference_parameters(PRECISION)
    params.check_security()
    assert params.poly_modulus_degree == 8192
    assert sum(params.coeff_mod_bit_sizes) > ckks.MAX_MODULUS_BITS_128[4096]  # the chain does not fit the next ring down
    assert ci.inference_parameters(1e-2).scale_bits < params.scale_bits
    with pytest.raises(ci.InferenceError, match="SEAL's primes stop at 60 bits"):
        ci.inference_parameters(1e-7)


def test_decrypted_logits_equal_the_plaintext_logits_within_the_precision_for_every_row(keys: tuple) -> None:
    secret, public = keys
    n = ckks.slot_count(public) + 37  # past one ciphertext: the second is scored on its declared rows too
    X, weights, bias = rows_and_model(n, 6)
    reply = ci.score(public, [c for column in ci.encrypt_rows(secret, X) for c in column], n, weights, bias, PRECISION)
    logits = ckks.decrypt(secret, reply, n)
    assert np.abs(X @ weights + bias).max() > 3
    assert np.abs(logits - (X @ weights + bias)).max() <= PRECISION
    assert ci.flood_margin_bits(ci.inference_parameters(PRECISION), weights, PRECISION) >= ci.FLOOD_MARGIN_BITS


def test_the_holders_context_holds_no_secret_key_and_cannot_decrypt(keys: tuple) -> None:
    secret, public = keys
    X, weights, bias = rows_and_model(10, 3)
    reply = ci.score(public, [c for column in ci.encrypt_rows(secret, X) for c in column], 10, weights, bias, PRECISION)
    assert not public.is_private()
    with pytest.raises(ckks.CKKSError, match="holds no secret key"):
        ckks.decrypt(public, reply, 10)
    with pytest.raises(ci.InferenceError, match="holds none"):
        ci.encrypt_rows(public, X)


def test_a_context_with_the_secret_key_or_a_query_of_the_wrong_shape_is_refused(keys: tuple) -> None:
    secret, public = keys
    X, weights, bias = rows_and_model(10, 3)
    query = [c for column in ci.encrypt_rows(secret, X) for c in column]
    with pytest.raises(ci.InferenceError, match="carries its secret key"):
        ci.score(secret, query, 10, weights, bias, PRECISION)
    with pytest.raises(ci.InferenceError, match="holds 2 ciphertexts; 3 feature columns of 10 declared rows"):
        ci.score(public, query[:2], 10, weights, bias, PRECISION)


def test_rows_packed_beyond_the_declared_count_come_back_as_noise(keys: tuple) -> None:
    """A querier charged for 5 rows that packs 200 gets 5 logits and, in every other slot, the flood alone."""
    secret, public = keys
    X, weights, bias = rows_and_model(200, 4)
    reply = ci.score(public, [c for column in ci.encrypt_rows(secret, X) for c in column], 5, weights, bias, PRECISION)
    everything = ckks.decrypt(secret, reply, 200)
    assert np.abs(everything[:5] - (X[:5] @ weights + bias)).max() <= PRECISION
    assert np.abs(everything[5:]).max() <= PRECISION < np.abs(X[5:] @ weights + bias).min()


def test_each_reply_is_re_randomized_and_freshly_flooded(keys: tuple) -> None:
    secret, public = keys
    X, weights, bias = rows_and_model(50, 3)
    query = [c for column in ci.encrypt_rows(secret, X) for c in column]
    first, second = (ci.score(public, query, 50, weights, bias, PRECISION) for _ in range(2))
    assert first != second
    a, b = (ckks.decrypt(secret, reply, 50) for reply in (first, second))
    assert 0 < np.abs(a - b).max() <= 2 * PRECISION
