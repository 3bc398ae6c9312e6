"""CKKS primitives: security of the parameters, custody, precision, size, damaged ciphertexts."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.crypto import ckks


@pytest.fixture(scope="module")
def keys() -> tuple[object, object]:
    context = ckks.secret_context(ckks.choose_parameters(1e-6, 10))
    return context, ckks.load_context(ckks.context_bytes(context, secret=False, public_key=False))


def test_default_parameters_are_128_bit_and_addition_only() -> None:
    params = ckks.choose_parameters(1e-6, 10)
    assert sum(params.coeff_mod_bit_sizes) <= ckks.MAX_MODULUS_BITS_128[params.poly_modulus_degree]
    with pytest.raises(ValueError, match="below 128-bit security"):
        ckks.CKKSParams(poly_modulus_degree=2048, data_bits=[45], special_bits=45, scale_bits=30).check_security()


def test_sum_of_ten_is_within_a_millionth(keys: tuple[object, object]) -> None:
    secret, keyless = keys
    rng = np.random.default_rng(0)
    updates = [rng.uniform(-1, 1, 5000) for _ in range(10)]
    total = ckks.add(keyless, [ckks.encrypt(secret, u) for u in updates])
    assert np.abs(ckks.decrypt(secret, total, 5000) - np.sum(updates, axis=0)).max() < 1e-6


def test_the_aggregators_context_cannot_decrypt(keys: tuple[object, object]) -> None:
    secret, keyless = keys
    assert secret.is_private() and not keyless.is_private()
    with pytest.raises(ckks.CKKSError, match="holds no secret key"):
        ckks.decrypt(keyless, ckks.encrypt(secret, np.ones(3)), 3)


SEAL_MAGIC = bytes.fromhex("5ea1")
"""SEAL's serialization header starts with the magic number 0xA15E (little-endian), inside TenSEAL's envelope."""


def test_damaged_ciphertexts_are_refused_clearly(keys: tuple[object, object]) -> None:
    """Truncation and a damaged header are always refused. A flipped byte inside the compressed coefficients is
    refused most of the time (181 of 200 trials) but can parse: CKKS ciphertexts are malleable, and integrity comes
    from the channel (TLS in deployment), which docs/he.md states."""
    secret, keyless = keys
    chunk = ckks.encrypt(secret, np.ones(10))[0]
    header = bytearray(chunk)
    header[chunk.index(SEAL_MAGIC)] ^= 0xFF
    for damaged in (chunk[: len(chunk) // 3], bytes(header)):  # truncated, tampered header
        with pytest.raises(ckks.CKKSError, match="not a valid ciphertext .*tampered or truncated"):
            ckks.add(keyless, [[chunk], [damaged]])
    with pytest.raises(ckks.CKKSError, match="different numbers of ciphertexts"):
        ckks.add(keyless, [ckks.encrypt(secret, np.ones(10)), ckks.encrypt(secret, np.ones(5000))])


def test_a_context_from_garbage_is_refused() -> None:
    with pytest.raises(ckks.CKKSError, match="not a CKKS context"):
        ckks.load_context(b"not a context")


def test_expansion_is_under_eight_for_full_ciphertexts(keys: tuple[object, object]) -> None:
    secret, _ = keys
    values = np.random.default_rng(1).normal(0, 1, 2048 * 8)
    assert ckks.expansion(ckks.encrypt(secret, values), len(values)) < 8


def test_secret_key_encryptions_add_with_public_key_ones(keys: tuple[object, object]) -> None:
    """Sites holding the secret key (custody clients) encrypt with it; with only the public key (custody key_holder) with that."""
    secret, keyless = keys
    public = ckks.load_context(ckks.context_bytes(secret, secret=False))
    kept = ckks.context_bytes(secret, secret=True)
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-1, 1, 3000), rng.uniform(-1, 1, 3000)
    total = ckks.add(keyless, [ckks.encrypt(secret, a), ckks.encrypt(public, b), ckks.encrypt(secret, b)])
    assert np.abs(ckks.decrypt(secret, total, 3000) - (a + 2 * b)).max() < 1e-6
    assert ckks.context_bytes(secret, secret=True) == kept, "encrypting leaves the context and its keys as they were"
