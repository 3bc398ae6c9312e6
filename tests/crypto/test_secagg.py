"""Masking secure aggregation: exact sums, masked inputs that look uniform, dropout recovery and the protocol's refusals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from workbench.crypto import secagg as sa

FIVE = ("hospital-a", "hospital-b", "hospital-c", "hospital-d", "hospital-e")


@dataclass
class Federation:
    """The server and its sites through AdvertiseKeys and ShareKeys; the tests drive the last two rounds."""

    params: sa.SecAggParams
    states: dict[str, sa.SiteState]
    advertisements: list[sa.KeyAdvertisement]
    u2: tuple[str, ...]
    inbox: dict[str, list[sa.EncryptedShares]]

    @classmethod
    def start(cls, params: sa.SecAggParams, sites: Sequence[str], keys: Mapping[str, tuple[sa.SiteState, sa.KeyAdvertisement]] | None = None) -> Federation:
        """AdvertiseKeys (fresh key pairs, or those of `keys`) and ShareKeys (always fresh self-mask seeds)."""
        advertised = dict(keys) if keys is not None else {site: sa.advertise_keys(site) for site in sites}
        states = {site: advertised[site][0] for site in sites}
        advertisements = [advertised[site][1] for site in sites]
        messages = []
        for site in sites:
            states[site], sent = sa.share_keys(states[site], params, advertisements)
            messages += sent
        u2, inbox = sa.relay(messages)
        return cls(params, states, advertisements, u2, inbox)

    def mask(self, updates: Mapping[str, np.ndarray]) -> list[sa.MaskedInput]:
        inputs = []
        for site, update in updates.items():
            self.states[site], masked = sa.masked_input(self.states[site], self.inbox.get(site, []), self.u2, update)
            inputs.append(masked)
        return inputs

    def unmask(self, inputs: list[sa.MaskedInput], answering: Sequence[str] | None = None) -> np.ndarray:
        request = sa.unmask_request(self.u2, inputs)
        responses = []
        for site in request.survivors if answering is None else answering:
            self.states[site], response = sa.unmask(self.states[site], request)
            responses.append(response)
        return sa.unmasked_sum(self.params, self.advertisements, self.u2, inputs, responses)


def updates(sites: Sequence[str], length: int, seed: int, spread: float = 8.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {site: rng.uniform(-spread, spread, length) for site in sites}


@pytest.mark.parametrize("modulus_bits", [32, 64])
def test_the_unmasked_sum_is_the_exact_sum_of_the_quantized_inputs(modulus_bits: int) -> None:
    params = sa.SecAggParams(modulus_bits=modulus_bits)
    sites = FIVE[:4]
    values = updates(sites, 5000, seed=modulus_bits)
    values[sites[0]][:3] = [params.clip_range, -params.clip_range, 0.0]  # the ends of the range and zero
    federation = Federation.start(params, sites)
    inputs = federation.mask(values)
    assert all(masked.vector.dtype == (np.uint32 if modulus_bits == 32 else np.uint64) for masked in inputs)
    total = federation.unmask(inputs)
    assert np.array_equal(total, sum(sa.quantize(params, v) for v in values.values()))

    error = np.abs(sa.dequantize(params, total) - sum(values.values()))
    bound = params.error_bound(len(sites))
    assert bound == pytest.approx(4 * (16 / 2**22) / 2)
    assert error.max() <= bound, "each site is off by at most step/2, so n sites by n·step/2"
    assert error.max() > bound / 100, "the bound is not loose by orders of magnitude"


def test_values_beyond_the_clip_range_are_clipped_and_non_finite_ones_refused() -> None:
    params = sa.SecAggParams(clip_range=1.0, quantization_bits=10)
    assert sa.quantize(params, np.array([5.0, -5.0, 0.5])).tolist() == [512, -512, 256]
    with pytest.raises(sa.SecAggError, match="update value 1 is nan"):
        sa.quantize(params, np.array([0.0, np.nan]))


def test_a_masked_input_looks_uniform() -> None:
    """A constant update (one bucket of values) masks to residues whose top 4 bits fill 16 buckets evenly."""
    params = sa.SecAggParams()
    federation = Federation.start(params, FIVE[:3])
    length = 1 << 15
    inputs = federation.mask({site: np.full(length, 7.5) for site in FIVE[:3]})
    plain = sa.encode(params, sa.quantize(params, np.full(length, 7.5)))
    assert len(np.unique(plain >> 28)) == 1, "unmasked, every value is in one bucket"
    for masked in inputs:
        counts = np.bincount(masked.vector >> 28, minlength=16)
        assert stats.chisquare(counts).pvalue > 1e-9  # fails by chance once in a billion runs


def test_fresh_seeds_hide_the_difference_of_two_inputs_and_a_reused_state_does_not() -> None:
    params = sa.SecAggParams()
    sites = FIVE[:3]
    keys = {site: sa.advertise_keys(site) for site in sites}
    first, second = Federation.start(params, sites, keys), Federation.start(params, sites, keys)
    x1, x2 = updates(sites, 2000, seed=1), updates(sites, 2000, seed=2)
    site = sites[0]
    state = first.states[site]
    y1 = first.mask(x1)[0].vector
    y2 = second.mask(x2)[0].vector
    revealed = sa.encode(params, sa.quantize(params, x1[site])) - sa.encode(params, sa.quantize(params, x2[site]))
    assert np.mean(y1 - y2 == revealed) < 0.01, "same keys, fresh self-mask seeds: the difference tells nothing"

    _, again = sa.masked_input(state, first.inbox[site], first.u2, x2[site])  # the same seed twice: never do this
    assert np.array_equal(y1 - again.vector, revealed)


def test_two_dropouts_after_share_keys_leave_the_survivors_sum_exactly() -> None:
    params = sa.SecAggParams(reconstruction_threshold=3)
    federation = Federation.start(params, FIVE)
    assert federation.u2 == FIVE
    survivors = (FIVE[0], FIVE[2], FIVE[4])  # b and d shared their keys, then dropped before MaskedInputCollection
    values = updates(survivors, 300, seed=3)
    inputs = federation.mask(values)
    request = sa.unmask_request(federation.u2, inputs)
    assert request == sa.UnmaskRequest(survivors, (FIVE[1], FIVE[3]))
    total = federation.unmask(inputs)
    assert np.array_equal(total, sum(sa.quantize(params, values[site]) for site in survivors))


def test_a_third_dropout_during_unmasking_stops_with_the_count_and_threshold() -> None:
    params = sa.SecAggParams(reconstruction_threshold=3)
    federation = Federation.start(params, FIVE)
    survivors = (FIVE[0], FIVE[2], FIVE[4])
    inputs = federation.mask(updates(survivors, 50, seed=4))
    with pytest.raises(
        sa.SecAggDropoutError, match=r"Unmasking: 2 of the 3 surviving sites answered \(hospital-a, hospital-c\), fewer than reconstruction_threshold 3"
    ):
        federation.unmask(inputs, answering=survivors[:2])


def test_too_few_masked_inputs_are_refused_by_server_and_sites() -> None:
    params = sa.SecAggParams(reconstruction_threshold=3)
    federation = Federation.start(params, FIVE)
    inputs = federation.mask(updates(FIVE[:2], 50, seed=5))
    with pytest.raises(sa.SecAggDropoutError, match="only 2 sites sent masked inputs, fewer than reconstruction_threshold 3"):
        sa.unmask(federation.states[FIVE[0]], sa.unmask_request(federation.u2, inputs))
    with pytest.raises(sa.SecAggDropoutError, match="2 of the 5 sites that shared keys sent a masked input, fewer than reconstruction_threshold 3"):
        sa.unmasked_sum(params, federation.advertisements, federation.u2, inputs, [])


def test_a_survivor_never_releases_both_shares_of_one_site() -> None:
    federation = Federation.start(sa.SecAggParams(reconstruction_threshold=3), FIVE)
    federation.mask(updates(FIVE, 20, seed=6))
    state = federation.states[FIVE[0]]
    everyone_survived = sa.UnmaskRequest(FIVE, ())
    with pytest.raises(sa.SecAggProtocolError, match="refuses to release both .* of hospital-e"):
        sa.unmask(state, sa.UnmaskRequest(FIVE, (FIVE[4],)))

    state, response = sa.unmask(state, everyone_survived)
    assert set(response.seed_shares) == set(FIVE) and not response.key_shares
    assert sa.unmask(state, everyone_survived)[1] == response, "the same request again (a retry) gets the same answer"
    with pytest.raises(sa.SecAggProtocolError, match="refuses to release both .* of hospital-d"):  # asked later for d's key
        sa.unmask(state, sa.UnmaskRequest(FIVE[:3] + FIVE[4:], (FIVE[3],)))
    with pytest.raises(sa.SecAggProtocolError, match="must name each site that shared keys"):
        sa.unmask(state, sa.UnmaskRequest(FIVE[:4], ()))


def test_fewer_share_holders_than_sites_still_recover_a_dropout() -> None:
    params = sa.SecAggParams(num_shares=3, reconstruction_threshold=2)
    federation = Federation.start(params, FIVE)
    roster = params.for_sites(FIVE)
    assert roster.holders(FIVE[4]) == (FIVE[4], FIVE[0], FIVE[1])
    assert all(len(federation.inbox[site]) == 2 for site in FIVE), "each site holds its own share and two others'"
    survivors = FIVE[:4]
    values = updates(survivors, 100, seed=7)
    total = federation.unmask(federation.mask(values))
    assert np.array_equal(total, sum(sa.quantize(params, values[site]) for site in survivors))


def test_weighted_updates_average_over_the_survivors() -> None:
    params = sa.SecAggParams(reconstruction_threshold=2)
    sites = FIVE[:3]
    rows = {sites[0]: 100, sites[1]: 300, sites[2]: 600}
    values = updates(sites, 40, seed=8, spread=2.0)
    federation = Federation.start(params, sites)
    inputs = federation.mask({site: sa.with_weight(values[site], rows[site] / 1000) for site in sites[:2]})  # c drops
    average = sa.weighted_average(sa.dequantize(params, federation.unmask(inputs)))
    expected = np.average([values[sites[0]], values[sites[1]]], axis=0, weights=[100, 300])
    error = params.error_bound(2)  # on each summed w·x and on the summed weight 0.4; |x| <= 2
    assert np.abs(average - expected).max() <= (error + 2 * error) / (0.4 - error)
    with pytest.raises(sa.SecAggError, match="summed weight of the surviving sites is 0"):
        sa.weighted_average(np.zeros(3))


def test_parameters_out_of_range_are_refused_naming_the_field() -> None:
    for field, value in [("quantization_bits", 0), ("reconstruction_threshold", 1), ("num_shares", 1), ("clip_range", 0.0), ("modulus_bits", 48)]:
        with pytest.raises(ValidationError, match=field):
            sa.SecAggParams.model_validate({field: value})
    with pytest.raises(sa.SecAggParameterError, match="reconstruction_threshold 4 exceeds num_shares 3 \\(3 sites\\)"):
        sa.SecAggParams(reconstruction_threshold=4).for_sites(FIVE[:3])
    with pytest.raises(sa.SecAggParameterError, match="num_shares 6 exceeds the 5 sites"):
        sa.SecAggParams(num_shares=6).for_sites(FIVE)
    with pytest.raises(sa.SecAggParameterError, match="at least 2 sites, got 1"):
        sa.SecAggParams().for_sites(FIVE[:1])
    assert [sa.SecAggParams().for_sites(FIVE[:n]).threshold for n in (2, 3, 4, 5)] == [2, 2, 3, 3], "a majority, at least 2"


def test_a_modulus_the_sum_would_wrap_is_refused() -> None:
    sites = [f"site-{i:04d}" for i in range(1024)]
    params = sa.SecAggParams(reconstruction_threshold=2)
    assert params.for_sites(sites[:1023]).sites[0] == "site-0000", "1023 · 2^22 < 2^32"
    with pytest.raises(
        sa.SecAggParameterError, match=r"modulus_bits 32 is too small for 1024 sites at quantization_bits 22: .* quantization_bits <= 21 or modulus_bits 64"
    ):
        params.for_sites(sites)
    params.model_copy(update={"modulus_bits": 64}).for_sites(sites)
    fine = sa.SecAggParams(quantization_bits=52, modulus_bits=64, reconstruction_threshold=2)
    fine.for_sites(sites[:2])
    with pytest.raises(sa.SecAggParameterError, match="modulus_bits 64 is too small for 4096 sites at quantization_bits 52: .* use quantization_bits <= 51$"):
        fine.for_sites([f"site-{i:04d}" for i in range(4096)])


def test_the_server_can_neither_alter_a_share_nor_leave_out_a_site_s_keys() -> None:
    params = sa.SecAggParams()
    sites = FIVE[:3]
    federation = Federation.start(params, sites)
    site = sites[0]
    message = federation.inbox[site][0]
    flipped = replace(message, ciphertext=message.ciphertext[:-1] + bytes([message.ciphertext[-1] ^ 1]))
    with pytest.raises(sa.SecAggProtocolError, match=f"the shares from '{message.sender}' to '{site}' do not decrypt"):
        sa.masked_input(federation.states[site], [flipped], federation.u2, np.zeros(4))
    with pytest.raises(sa.SecAggProtocolError, match="not one it expects"):  # relayed to another site
        sa.masked_input(federation.states[sites[2]], [message], federation.u2, np.zeros(4))
    relabelled = replace(message, recipient=sites[2])  # and relabelled for it: the recipient is authenticated data
    with pytest.raises(sa.SecAggProtocolError, match="do not decrypt"):
        sa.masked_input(federation.states[sites[2]], [relabelled], federation.u2, np.zeros(4))

    state, _ = sa.advertise_keys(site)
    with pytest.raises(sa.SecAggProtocolError, match="does not hold site 'hospital-a''s own keys"):
        sa.share_keys(state, params, federation.advertisements)  # the list holds another key for hospital-a
