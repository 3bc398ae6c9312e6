"""CKKS primitives: security of the parameters, custody, precision, size, damaged ciphertexts."""

from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts

from tests.crypto.slots import every_slot
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


@pytest.mark.parametrize("length", [22, 2048 + 22], ids=["flagship-sized", "last-ciphertext-short"])
def test_no_slot_the_key_holder_decodes_is_bare(length: int) -> None:
    """Issue 21: TenSEAL repeats a short vector across all slots, and a mask over the first `length` left the copies bare.

    Decoding every slot of the masked ciphertexts with the secret key finds no slot within 1e-3 of any true value (a
    uniform ±2^28 mask lands there by chance with probability ~1e-7), and unmasking still gives the values.
    """
    secret = ckks.secret_context(ckks.masking_parameters())
    public = ckks.load_context(ckks.context_bytes(secret, secret=False))
    values = np.random.default_rng(1).uniform(1, ckks.VALUE_BOUND, length)
    encrypted = ckks.encrypt(public, values)
    assert np.abs(every_slot(secret, encrypted)[length:]).max() < 1e-3, "slots beyond the values hold zeros, not copies"
    masked, mask = ckks.mask(public, encrypted, length)
    slots = every_slot(secret, masked)
    assert len(slots) == len(encrypted) * ckks.slot_count(public)
    assert np.abs(slots[:, None] - values[None, :]).min() > 1e-3
    assert np.abs(slots).mean() > 2**26, "every slot carries a mask of ±2^28"
    assert np.abs(ckks.decrypt(secret, masked, length) - mask - values).max() < 1e-6


def test_a_short_ciphertext_is_refused_for_masking() -> None:
    """A ciphertext TenSEAL made from a short vector (not through ckks.encrypt) cannot be masked whole: refused."""
    secret = ckks.secret_context(ckks.masking_parameters())
    short = ts.ckks_vector(secret, [1.0, 2.0]).serialize()
    with pytest.raises(ckks.CKKSError, match="replicates a short vector"):
        ckks.mask(secret, [short], 2)
