"""Exact fixed-point sums over CKKS, with the contexts of both custodies."""

from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts

from tests.crypto.slots import every_slot
from workbench.crypto import ckks
from workbench.crypto import secure_sum as ss

CODEC = ss.FixedPoint()


@pytest.fixture(scope="module")
def clients() -> tuple[ts.Context, ts.Context]:
    """Custody clients: the secret context hospitals share, and the aggregator's context with no key at all."""
    secret = ckks.secret_context(ckks.choose_parameters())
    return secret, ckks.load_context(ckks.context_bytes(secret, secret=False, public_key=False))


@pytest.fixture(scope="module")
def key_holder() -> tuple[ts.Context, ts.Context]:
    """Custody key_holder: the key holder's secret context and the public one hospitals and aggregator hold."""
    secret = ckks.secret_context(ckks.masking_parameters())
    return secret, ckks.load_context(ckks.context_bytes(secret, secret=False))


def party_values(parties: int, seed: int) -> list[np.ndarray]:
    """Statistics of every magnitude up to ~1e12, negative ones and exact zeros, with fractions below 2^-24."""
    rng = np.random.default_rng(seed)
    return [
        np.concatenate(
            [rng.uniform(-1e12, 1e12, 20), rng.normal(0, 1, 20) * 10.0 ** rng.integers(-9, 9, 20), [0.0, -1e12 + 1, 999_999_999_999.5, 2.0**-30, -3.0]]
        )
        for _ in range(parties)
    ]


def exact_total(values: list[np.ndarray]) -> list[int]:
    return [sum(CODEC.to_integer(v[i]) for v in values) for i in range(len(values[0]))]


def test_limbs_round_trip_exactly() -> None:
    values = [1e12 - 1, -1e12 + 0.25, 0.0, -(2.0**-24), 123.456, -7.0]
    limbs = CODEC.encode(values, [f"v{i}" for i in range(len(values))])
    assert np.abs(limbs).max() <= 2 ** (CODEC.limb_bits - 1)
    assert CODEC.combine(limbs) == [CODEC.to_integer(v) for v in values]


@pytest.mark.parametrize("parties", [3, 10])
def test_clients_custody_sum_is_exact(clients: tuple[ts.Context, ts.Context], parties: int) -> None:
    secret, keyless = clients
    values = party_values(parties, seed=parties)
    names = [f"stat[{i}]" for i in range(len(values[0]))]
    shares = [ss.encrypt(secret, CODEC.encode(v, names)) for v in values]
    total = ckks.add(keyless, shares)  # the aggregator adds without any key
    decrypted = ss.decrypt(secret, total, len(names), CODEC, parties)
    assert decrypted == exact_total(values), "every total equals the sum of the parties' fixed-point integers"
    pooled = np.sum(values, axis=0)
    assert np.allclose(CODEC.to_float(decrypted), pooled, rtol=1e-12, atol=parties * 2.0**-24)


@pytest.mark.parametrize("parties", [3, 10])
def test_key_holder_custody_masked_sum_is_exact(key_holder: tuple[ts.Context, ts.Context], parties: int) -> None:
    secret, public = key_holder
    values = party_values(parties, seed=100 + parties)
    count = len(values[0])
    shares = [ss.encrypt(public, CODEC.encode(v, [f"s{i}" for i in range(count)])) for v in values]
    masked = ss.mask(public, ckks.add(public, shares), count, CODEC, parties)
    seen = ss.decrypt_masked(secret, masked.chunks, count * CODEC.limbs, CODEC, parties)  # all the key holder learns
    assert np.abs(seen).max() > 2**40, "the key holder sees mask-sized integers"
    assert ss.unmask(seen, masked, CODEC, parties) == exact_total(values)


def test_no_limb_slot_the_key_holder_decodes_is_bare(key_holder: tuple[ts.Context, ts.Context]) -> None:
    """Issue 21: every slot of a masked limb sum, the padding included, carries a ±2^44 mask; no limb sum is readable."""
    secret, public = key_holder
    values = party_values(3, seed=5)
    count = len(values[0])  # 65 values of 11 limbs: 715 of 2048 slots
    shares = [ss.encrypt(public, CODEC.encode(v, [f"s{i}" for i in range(count)])) for v in values]
    total = ckks.add(public, shares)
    limb_sums = np.rint(every_slot(secret, total)[: count * CODEC.limbs])
    masked = ss.mask(public, total, count, CODEC, 3)
    slots = every_slot(secret, masked.chunks)
    assert len(slots) == ckks.slot_count(public)
    assert np.abs(slots).min() > CODEC.limb_sum_bound(3), "no slot is small enough to be an unmasked limb sum"
    assert not set(np.rint(slots).tolist()) & set(limb_sums.tolist())


def test_masked_views_of_different_sums_look_alike(key_holder: tuple[ts.Context, ts.Context]) -> None:
    """The largest and the smallest possible limb sums, masked, are indistinguishable to the key holder."""
    secret, public = key_holder
    count = 4096 // CODEC.limbs
    length = count * CODEC.limbs
    bound = CODEC.limb_sum_bound(10)
    views = {}
    for name, value in (("low", -bound), ("high", bound)):
        masked = ss.mask(public, ss.encrypt(public, np.full(length, value)), count, CODEC, 10)
        views[name] = ss.decrypt_masked(secret, masked.chunks, length, CODEC, 10).astype(float)
    spread = 2.0 ** (ss.MASK_BITS + 1) / np.sqrt(12 * length)  # standard error of a mean of uniform masks
    assert abs(views["low"].mean() - views["high"].mean()) < 6 * spread
    assert ss.statistical_distance(CODEC, 10, 1) == pytest.approx(10 * 2**7 / 2**44)


def test_out_of_range_value_names_the_statistic() -> None:
    with pytest.raises(ss.SecureSumError, match=r"sum_of_squares\[creatinine\] is 2\.2e\+12, outside the declared range ±2\^40"):
        CODEC.encode([1.0, 2.2e12], ["count", "sum_of_squares[creatinine]"])
    with pytest.raises(ss.SecureSumError, match=r"sum\[age\] is nan"):
        CODEC.encode([float("nan")], ["sum[age]"])
    assert len(ss.FixedPoint(value_bits=48).encode([2.2e12], ["x"])) == ss.FixedPoint(value_bits=48).limbs


def test_too_many_parties_for_the_limbs_is_refused(clients: tuple[ts.Context, ts.Context]) -> None:
    secret, _ = clients
    ss.FixedPoint().check_context(secret, 10)
    with pytest.raises(ss.SecureSumError, match="too few for 16-bit limbs summed over 1000 parties"):
        ss.FixedPoint(limb_bits=16).check_context(secret, 1000)
    with pytest.raises(ss.SecureSumError, match=r"too few for a ±2\^44 mask"):
        ss.mask(secret, ss.encrypt(secret, np.zeros(9)), 1, CODEC, 3)


def test_a_tampered_ciphertext_is_refused(clients: tuple[ts.Context, ts.Context]) -> None:
    secret, keyless = clients
    values = party_values(3, seed=1)
    names = [str(i) for i in range(len(values[0]))]
    shares = [ss.encrypt(secret, CODEC.encode(v, names)) for v in values]
    for forged_limbs in (np.full(len(names) * CODEC.limbs, 0.5), np.full(len(names) * CODEC.limbs, 2.0**12)):
        forged = ss.encrypt(secret, forged_limbs)  # valid ciphertexts, of no honest party's limbs
        with pytest.raises(ss.SecureSumError, match="not the integers they must be"):
            ss.decrypt(secret, ckks.add(keyless, [shares[0], shares[1], forged]), len(names), CODEC, 3)
    flipped = bytearray(shares[2][0])
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(ckks.CKKSError, match="tampered or truncated|not the integers they must be"):
        ss.decrypt(secret, ckks.add(keyless, [shares[0], shares[1], [bytes(flipped)]]), len(names), CODEC, 3)


def test_exact_where_floating_point_sums_are_not(clients: tuple[ts.Context, ts.Context]) -> None:
    """1e12 + 2^-20 - 1e12 is 0 in float64 accumulation order; the fixed-point sum keeps it."""
    secret, keyless = clients
    values = [np.array([1e12]), np.array([2.0**-20]), np.array([-1e12])]
    shares = [ss.encrypt(secret, CODEC.encode(v, ["x"])) for v in values]
    (total,) = ss.decrypt(secret, ckks.add(keyless, shares), 1, CODEC, 3)
    assert (1e12 + 2.0**-20) - 1e12 != 2.0**-20 and CODEC.to_float([total])[0] == 2.0**-20
