"""Secure aggregation by masking (Bonawitz et al., CCS 2017), semi-honest server, surviving sites that drop out.

The server learns the sum of the sites' quantized updates and nothing else, without any key holder: each site adds
masks that cancel in the sum. Pairs of sites agree on pairwise masks (one adds, the other subtracts); each site also
adds a self-mask from a fresh seed. If a site drops out after sharing its keys, its pairwise masks no longer cancel,
so every site Shamir-shares both its self-mask seed and its mask private key beforehand: the server rebuilds the
seeds of the sites that sent an input and the mask keys of those that did not, never both for one site (a site asked
for both refuses: that is what keeps a late input masked).

The paper's four rounds of the semi-honest protocol, as pure functions over bytes and numpy arrays (no Flower, no
network: an aggregation kind carries the messages):

0. AdvertiseKeys: `advertise_keys` (site) -> `KeyAdvertisement`; the server sends every site all of them (U1).
1. ShareKeys: `share_keys` (site) -> `EncryptedShares` for each share holder; `relay` (server) forwards them, U2.
2. MaskedInputCollection: `masked_input` (site) -> `MaskedInput`; the server keeps those that arrive (U3).
3. Unmasking: `unmask_request` (server), `unmask` (site) -> `UnmaskResponse`; `unmasked_sum` (server) rebuilds the
   secrets from at least `reconstruction_threshold` answers and returns the exact integer sum over U3.

(The paper numbers Unmasking 4: its round 3, ConsistencyCheck, exists only against a malicious server.)

Primitives, all from `cryptography` (no curve arithmetic here): X25519 key agreement; HKDF-SHA256 to turn every
agreement and seed into a key of one purpose (share encryption, a pair's mask, a self-mask), with the purpose and the
sites' names in its `info`; AES-256-GCM for the shares (authenticated: a share altered or redirected by the server
fails to decrypt; sender and recipient are its associated data); ChaCha20 as the PRG. ChaCha20 rather than AES-CTR:
both are standard stream ciphers in `cryptography`, ChaCha20 has a 256-bit key and is fast and constant-time without
AES hardware; its nonce is zero because every PRG key is derived afresh for one stream and never reused (fresh keys
and seeds each round). Shamir sharing is pycryptodome's (`shamir.py`).

Quantization (`quantize`): a value is clipped to ±clip_range and rounded to the nearest multiple of
step = 2·clip_range / 2^quantization_bits, an integer in [-2^(b-1), 2^(b-1)]; sums are taken modulo M =
2^modulus_bits (numpy's unsigned integers wrap exactly there) and read back as signed. Each value is off by at most
step/2, so a sum over n sites is off by at most n·step/2 (`SecAggParams.error_bound`) for values within the range;
the sum of n integers lies in [-n·2^(b-1), n·2^(b-1)] and reads back without wrapping iff n·2^b < M
(`SecAggParams.for_sites` refuses otherwise). Defaults as Flower's SecAgg+: ±8 in 2^22 steps (step 2^-18 ≈ 3.8e-6)
modulo 2^32, for up to 1023 sites.

numpy and cryptography load where they are used: the parameter model is importable by recipe validation alone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.crypto import shamir
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import numpy as np

DOMAIN = b"ppml-workbench secagg v1"
"""Prefix of every HKDF `info`: keys derived here are of no use to any other protocol."""
SEED_BYTES = 32
"""The self-mask seed b_u, like an X25519 private key, is 32 bytes: two Shamir blocks."""
NONCE_BYTES = 12


class SecAggError(WorkbenchError, ValueError):
    """Secure aggregation cannot go on: bad parameters, too many dropouts, or messages that break the protocol."""


class SecAggParameterError(SecAggError):
    """Parameters that do not fit the sites (threshold, share count, modulus); the message names the field."""


class SecAggDropoutError(SecAggError):
    """Too few sites answered for the sum to be unmasked; the message says how many and the threshold."""


class SecAggProtocolError(SecAggError):
    """A message a site or the server must refuse: inconsistent site sets, a share asked twice over, a bad ciphertext."""


class SecAggParams(BaseModel):
    """How one secure aggregation shares its keys and quantizes; every site and the server use the same one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_shares: int | None = Field(None, ge=2, description="Sites holding a share of each site's secrets, itself included; default: all sites.")
    reconstruction_threshold: int | None = Field(
        None, ge=2, description="Shares needed to rebuild a secret (and so sites that must answer Unmasking); default: a majority of num_shares, at least 2."
    )
    clip_range: float = Field(8.0, gt=0, allow_inf_nan=False, description="Update values are clipped to ±clip_range before quantization.")
    quantization_bits: int = Field(22, ge=1, le=52, description="±clip_range is cut into 2^quantization_bits steps.")
    modulus_bits: Literal[32, 64] = Field(32, description="Masked sums are taken modulo 2^modulus_bits (uint32 or uint64 vectors).")

    @property
    def step(self) -> float:
        """The quantization step: 2·clip_range / 2^quantization_bits."""
        return 2.0 * self.clip_range / 2.0**self.quantization_bits

    def error_bound(self, sites: int) -> float:
        """The largest error of a dequantized sum over `sites` sites, per value within ±clip_range: sites·step/2."""
        return sites * self.step / 2.0

    def for_sites(self, sites: Sequence[str]) -> Roster:
        """These parameters resolved for a set of sites, in the stable order every party uses (sorted names)."""
        names = tuple(sorted(sites))
        n = len(names)
        if len(set(names)) != n or not all(names):
            raise SecAggParameterError(f"secure aggregation needs distinct, non-empty site names, got {list(sites)}")
        if n < 2:
            raise SecAggParameterError(f"secure aggregation needs at least 2 sites, got {n}: one site's sum is its update")
        num_shares = n if self.num_shares is None else self.num_shares
        if num_shares > n:
            raise SecAggParameterError(f"num_shares {num_shares} exceeds the {n} sites; use at most {n}")
        threshold = max(2, num_shares // 2 + 1) if self.reconstruction_threshold is None else self.reconstruction_threshold
        if threshold > num_shares:
            raise SecAggParameterError(
                f"reconstruction_threshold {threshold} exceeds num_shares {num_shares} ({n} sites): no secret could ever be rebuilt; use at most {num_shares}"
            )
        if n << self.quantization_bits >= 1 << self.modulus_bits:
            largest = self.modulus_bits - n.bit_length()
            fixes = [f"quantization_bits <= {largest}"] if largest >= 1 else []
            if self.modulus_bits == 32 and n << self.quantization_bits < 1 << 64:
                fixes.append("modulus_bits 64")
            raise SecAggParameterError(
                f"modulus_bits {self.modulus_bits} is too small for {n} sites at quantization_bits {self.quantization_bits}: "
                f"their sum needs a modulus above {n}·2^{self.quantization_bits} or it wraps around; use {' or '.join(fixes) or 'fewer sites'}"
            )
        return Roster(self, names, num_shares, threshold)


@dataclass(frozen=True)
class Roster:
    """The parameters of one aggregation resolved for its sites (U1, sorted): how many shares, what threshold."""

    params: SecAggParams
    sites: tuple[str, ...]
    num_shares: int
    threshold: int

    def holders(self, site: str) -> tuple[str, ...]:
        """Who holds `site`'s shares, share index 1 first: the site itself and the next num_shares-1 sites, cyclically."""
        start = self.sites.index(site)
        return tuple(self.sites[(start + k) % len(self.sites)] for k in range(self.num_shares))


# --- messages and a site's state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyAdvertisement:
    """AdvertiseKeys: a site's two X25519 public keys (32 raw bytes each), unsigned (semi-honest server)."""

    site: str
    cipher_public: bytes
    """c_u^PK: agreed with to encrypt the shares sent to and from this site."""
    mask_public: bytes
    """s_u^PK: agreed with for the pairwise masks."""


@dataclass(frozen=True)
class EncryptedShares:
    """ShareKeys: one site's shares of its seed and mask key for one holder, AES-GCM-encrypted; the server relays it."""

    sender: str
    recipient: str
    ciphertext: bytes


@dataclass(frozen=True)
class MaskedInput:
    """MaskedInputCollection: a site's quantized update plus its masks, modulo 2^modulus_bits."""

    site: str
    vector: np.ndarray


@dataclass(frozen=True)
class UnmaskRequest:
    """Unmasking: the server names the sites whose masked input arrived (U3) and those that dropped after ShareKeys."""

    survivors: tuple[str, ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class UnmaskResponse:
    """Unmasking: a survivor's shares of the survivors' seeds and of the dropped sites' mask keys, by site."""

    site: str
    seed_shares: Mapping[str, bytes]
    key_shares: Mapping[str, bytes]


@dataclass(frozen=True)
class SiteState:
    """What a site keeps between rounds: private keys, its seed and the shares it holds. It never leaves the site.

    Each round function returns the next state; the caller must keep it (and a state is good for one aggregation:
    masking twice from the same state reuses the self-mask, and the difference of the two inputs shows).
    """

    site: str
    cipher_private: bytes = field(repr=False)
    mask_private: bytes = field(repr=False)
    roster: Roster | None = None
    keys: Mapping[str, KeyAdvertisement] = field(default_factory=dict, repr=False)
    seed: bytes = field(default=b"", repr=False)
    held: Mapping[str, tuple[bytes, bytes]] = field(default_factory=dict, repr=False)
    """Sender -> (its share of its seed b_v, its share of its mask key s_v^SK) held by this site."""
    u2: tuple[str, ...] = ()
    """The sites this site masked against (those that shared keys), once it sent its masked input."""
    released: Mapping[str, str] = field(default_factory=dict)
    """Site -> "seed" or "key": which of its shares this site already gave the server in Unmasking."""


# --- Round 0: AdvertiseKeys -------------------------------------------------------------------------------------


def advertise_keys(site: str) -> tuple[SiteState, KeyAdvertisement]:
    """Fresh key pairs c_u (share encryption) and s_u (masks) from the operating system, and their public halves."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    cipher, mask = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    state = SiteState(site, cipher.private_bytes_raw(), mask.private_bytes_raw())
    return state, KeyAdvertisement(site, cipher.public_key().public_bytes_raw(), mask.public_key().public_bytes_raw())


# --- Round 1: ShareKeys -----------------------------------------------------------------------------------------


def share_keys(state: SiteState, params: SecAggParams, advertisements: Sequence[KeyAdvertisement]) -> tuple[SiteState, list[EncryptedShares]]:
    """Draw the self-mask seed b_u, Shamir-share it and s_u^SK among the holders, encrypt each share for its holder.

    Refuses a key list that lacks this site's own keys or repeats a name or a key (the paper's check that keys are
    distinct: a repeated mask key would make two sites' pairwise masks equal).
    """
    keys = _advertised(advertisements)
    roster = params.for_sites(list(keys))
    own = keys.get(state.site)
    if own is None or (own.cipher_public, own.mask_public) != (_public(state.cipher_private), _public(state.mask_private)):
        raise SecAggProtocolError(f"ShareKeys: the server's list of advertised keys does not hold site '{state.site}''s own keys")
    seed = secrets.token_bytes(SEED_BYTES)
    holders = roster.holders(state.site)
    seed_shares = shamir.split(seed, roster.threshold, len(holders))
    key_shares = shamir.split(state.mask_private, roster.threshold, len(holders))
    held: dict[str, tuple[bytes, bytes]] = {}
    messages = []
    for holder, seed_share, key_share in zip(holders, seed_shares, key_shares):
        if holder == state.site:
            held[holder] = (seed_share, key_share)
            continue
        key = _share_key(state.cipher_private, keys[holder], state.site)
        messages.append(EncryptedShares(state.site, holder, _seal(key, state.site, holder, seed_share + key_share)))
    return replace(state, roster=roster, keys=keys, seed=seed, held=held), messages


def relay(messages: Sequence[EncryptedShares]) -> tuple[tuple[str, ...], dict[str, list[EncryptedShares]]]:
    """The server's part of ShareKeys: U2 (the sites that sent shares) and each recipient's ciphertexts, unread."""
    inbox: dict[str, list[EncryptedShares]] = {}
    for message in messages:
        inbox.setdefault(message.recipient, []).append(message)
    return tuple(sorted({message.sender for message in messages})), inbox


# --- Round 2: MaskedInputCollection -----------------------------------------------------------------------------


def masked_input(state: SiteState, shares: Sequence[EncryptedShares], u2: Sequence[str], update: np.ndarray) -> tuple[SiteState, MaskedInput]:
    """y_u = q(x_u) + PRG(b_u) + Σ_{v in U2, v > u} PRG(s_uv) − Σ_{v in U2, v < u} PRG(s_uv)  (mod 2^modulus_bits).

    `shares` are the ciphertexts the server relayed to this site; `u2` the sites that completed ShareKeys, which the
    server announces (a site masks against exactly those, so masks of sites that never shared keys are never added).
    """
    roster = _roster(state, "MaskedInputCollection")
    keys = state.keys
    masked_with = _members(roster, u2, "U2")
    if state.site not in masked_with:
        raise SecAggProtocolError(f"MaskedInputCollection: U2 does not list site '{state.site}', which shared its keys")
    if len(masked_with) < roster.threshold:
        raise SecAggDropoutError(
            f"MaskedInputCollection: only {len(masked_with)} sites completed ShareKeys ({', '.join(masked_with)}), "
            f"fewer than reconstruction_threshold {roster.threshold}"
        )
    held = dict(state.held)
    for message in shares:
        if message.recipient != state.site or message.sender not in masked_with or message.sender in held:
            raise SecAggProtocolError(
                f"MaskedInputCollection: site '{state.site}' got a share from '{message.sender}' for '{message.recipient}', "
                "not one it expects (another recipient, a sender outside U2, or a second share)"
            )
        plain = _open(_share_key(state.cipher_private, keys[message.sender], state.site), message, state.site)
        half = len(plain) // 2
        held[message.sender] = (plain[:half], plain[half:])

    params = roster.params
    vector = encode(params, quantize(params, update))
    vector += prg(_derive(state.seed, "self-mask"), len(vector), params.modulus_bits)
    for other in masked_with:
        if other == state.site:
            continue
        pairwise = prg(_pair_mask_key(state.mask_private, keys[other], state.site), len(vector), params.modulus_bits)
        if state.site < other:
            vector += pairwise
        else:
            vector -= pairwise
    return replace(state, held=held, u2=masked_with), MaskedInput(state.site, vector)


# --- Round 3 (the paper's 4): Unmasking -------------------------------------------------------------------------


def unmask_request(u2: Sequence[str], inputs: Sequence[MaskedInput]) -> UnmaskRequest:
    """The server's list for Unmasking: who sent a masked input (U3), and who shared keys but sent none."""
    survivors = sorted({masked.site for masked in inputs})
    stray = [site for site in survivors if site not in u2]
    if stray:
        raise SecAggProtocolError(f"Unmasking: masked inputs from sites that did not complete ShareKeys: {', '.join(stray)}")
    return UnmaskRequest(tuple(survivors), tuple(sorted(set(u2) - set(survivors))))


def unmask(state: SiteState, request: UnmaskRequest) -> tuple[SiteState, UnmaskResponse]:
    """A survivor's shares: of b_v for each survivor v, of s_v^SK for each dropped v; never both for one v.

    The checks are the protocol's safety: with both shares of a site whose masked input arrived (late, say), the
    server could strip every mask from it and read its update. So a site refuses a request naming a site on both
    sides, or contradicting what it released before, or not naming each site of U2 exactly once.
    """
    roster = _roster(state, "Unmasking")
    if not state.u2:
        raise SecAggProtocolError(f"Unmasking: site '{state.site}' has not sent its masked input; it answers no Unmasking request")
    survivors, dropped = set(request.survivors), set(request.dropped)
    both = sorted(survivors & dropped)
    both += sorted(v for v in survivors if state.released.get(v) == "key")
    both += sorted(v for v in dropped if state.released.get(v) == "seed")
    if both:
        raise SecAggProtocolError(
            f"Unmasking: site '{state.site}' refuses to release both the self-mask seed share and the mask key share of {', '.join(both)}: "
            "with both, the server could unmask that site's own input"
        )
    if survivors | dropped != set(state.u2) or state.site not in survivors:
        raise SecAggProtocolError(
            f"Unmasking: the request must name each site that shared keys ({', '.join(state.u2)}) once, '{state.site}' among the survivors; "
            f"got survivors {sorted(survivors)} and dropped {sorted(dropped)}"
        )
    if len(survivors) < roster.threshold:
        raise SecAggDropoutError(f"Unmasking: only {len(survivors)} sites sent masked inputs, fewer than reconstruction_threshold {roster.threshold}")
    seeds = {v: state.held[v][0] for v in sorted(survivors) if v in state.held}
    keys = {v: state.held[v][1] for v in sorted(dropped) if v in state.held}
    released = {**state.released, **dict.fromkeys(seeds, "seed"), **dict.fromkeys(keys, "key")}
    return replace(state, released=released), UnmaskResponse(state.site, seeds, keys)


def unmasked_sum(
    params: SecAggParams,
    advertisements: Sequence[KeyAdvertisement],
    u2: Sequence[str],
    inputs: Sequence[MaskedInput],
    responses: Sequence[UnmaskResponse],
) -> np.ndarray:
    """The server's result: Σ_{u in U3} q(x_u) as int64, exactly (`dequantize` turns it into floats).

    Rebuilds b_v for every survivor and removes PRG(b_v); rebuilds s_v^SK for every dropped site, checks it against
    the advertised s_v^PK, and removes the pairwise masks it shared with each survivor. Needs at least
    `reconstruction_threshold` answers (and shares of each secret).
    """
    import numpy as np

    keys = _advertised(advertisements)
    roster = params.for_sites(list(keys))
    masked_with = _members(roster, u2, "U2")
    dtype = _unsigned(params)
    vectors: dict[str, np.ndarray] = {}
    for masked in inputs:
        if masked.site not in masked_with or masked.site in vectors:
            raise SecAggProtocolError(f"Unmasking: a masked input from '{masked.site}', which is outside U2 or sent twice")
        if masked.vector.dtype != dtype or masked.vector.ndim != 1 or (vectors and len(masked.vector) != len(next(iter(vectors.values())))):
            raise SecAggProtocolError(f"Unmasking: the masked input of '{masked.site}' is not a {dtype} vector of the others' length")
        vectors[masked.site] = masked.vector
    survivors = sorted(vectors)
    dropped = [site for site in masked_with if site not in vectors]
    if len(survivors) < roster.threshold:
        raise SecAggDropoutError(
            f"MaskedInputCollection: {len(survivors)} of the {len(masked_with)} sites that shared keys sent a masked input, "
            f"fewer than reconstruction_threshold {roster.threshold}"
        )
    answers: dict[str, UnmaskResponse] = {}
    for response in responses:
        if response.site not in vectors or response.site in answers:
            raise SecAggProtocolError(f"Unmasking: an answer from '{response.site}', which sent no masked input or answered twice")
        answers[response.site] = response
    if len(answers) < roster.threshold:
        raise SecAggDropoutError(
            f"Unmasking: {len(answers)} of the {len(survivors)} surviving sites answered ({', '.join(sorted(answers)) or 'none'}), "
            f"fewer than reconstruction_threshold {roster.threshold}: the masks cannot be removed and this round has no sum"
        )

    total = np.zeros_like(next(iter(vectors.values())))
    for vector in vectors.values():
        total += vector
    length = len(total)
    for site in survivors:
        seed = _rebuild(roster, site, [a.seed_shares[site] for a in answers.values() if site in a.seed_shares], "self-mask seed")
        total -= prg(_derive(seed, "self-mask"), length, params.modulus_bits)
    for site in dropped:
        mask_private = _rebuild(roster, site, [a.key_shares[site] for a in answers.values() if site in a.key_shares], "mask key")
        if _public(mask_private) != keys[site].mask_public:
            raise SecAggProtocolError(f"Unmasking: the rebuilt mask key of '{site}' does not match its advertised key: a share was altered")
        for survivor in survivors:
            pairwise = prg(_pair_mask_key(mask_private, keys[survivor], site), length, params.modulus_bits)
            if survivor < site:
                total -= pairwise  # the survivor added it
            else:
                total += pairwise  # the survivor subtracted it
    return decode(params, total)


# --- quantization -----------------------------------------------------------------------------------------------


def quantize(params: SecAggParams, update: np.ndarray) -> np.ndarray:
    """Integers round(clip(x, ±clip_range) / step) in [-2^(b-1), 2^(b-1)], as int64; refuses non-finite values."""
    import numpy as np

    values = np.asarray(update, dtype=np.float64)
    if values.ndim != 1:
        raise SecAggError(f"secure aggregation takes a flat vector, got shape {values.shape}")
    finite = np.isfinite(values)
    if not finite.all():
        where = int(np.argmin(finite))
        raise SecAggError(f"update value {where} is {values[where]}: only finite values can be quantized")
    return np.rint(np.clip(values, -params.clip_range, params.clip_range) / params.step).astype(np.int64)


def dequantize(params: SecAggParams, totals: np.ndarray) -> np.ndarray:
    """Float sums from integer sums: totals · step."""
    import numpy as np

    return np.asarray(totals, dtype=np.int64).astype(np.float64) * params.step


def encode(params: SecAggParams, quantized: np.ndarray) -> np.ndarray:
    """Signed integers as residues modulo 2^modulus_bits (two's complement; `for_sites` keeps them in range)."""
    import numpy as np

    signed = np.int32 if params.modulus_bits == 32 else np.int64
    return np.asarray(quantized, dtype=np.int64).astype(signed).view(_unsigned(params)).copy()


def decode(params: SecAggParams, residues: np.ndarray) -> np.ndarray:
    """Residues modulo 2^modulus_bits as the signed integers in [-M/2, M/2) they stand for, as int64."""
    import numpy as np

    signed = np.int32 if params.modulus_bits == 32 else np.int64
    return np.asarray(residues, dtype=_unsigned(params)).view(signed).astype(np.int64)


def with_weight(update: np.ndarray, weight: float) -> np.ndarray:
    """What a site sends for a weighted average: w·x and w as one more value (as the CKKS kind does).

    The summed last value is the survivors' total weight, so `weighted_average` renormalizes when sites drop out.
    The clip applies to w·x: with w = rows / total rows ≤ 1, a site's values may reach clip_range / w.
    """
    import numpy as np

    return np.append(weight * np.asarray(update, dtype=np.float64), weight)


def weighted_average(total: np.ndarray) -> np.ndarray:
    """Σ w·x / Σ w from a dequantized sum of `with_weight` vectors."""
    weight = float(total[-1])
    if weight <= 0:
        raise SecAggError(f"the summed weight of the surviving sites is {weight:.3g}: there is no average to take")
    return total[:-1] / weight


# --- primitives -------------------------------------------------------------------------------------------------


def prg(key: bytes, length: int, modulus_bits: int) -> np.ndarray:
    """`length` uniform residues modulo 2^modulus_bits: the ChaCha20 keystream under `key` (zero nonce), read as words."""
    import numpy as np
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    width = modulus_bits // 8
    stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor().update(bytes(length * width))
    return np.frombuffer(stream, dtype=f"<u{width}").astype(np.uint32 if width == 4 else np.uint64)


def _label(*parts: str | bytes) -> bytes:
    """An unambiguous HKDF `info`: the domain, then each part behind its length."""
    encoded = [part.encode("utf-8") if isinstance(part, str) else part for part in parts]
    return DOMAIN + b"".join(len(part).to_bytes(4, "big") + part for part in encoded)


def _derive(secret: bytes, *context: str) -> bytes:
    """HKDF-SHA256 of `secret` to a 32-byte key for one purpose, named by `context`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_label(*context)).derive(secret)


def _public(private: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _agree(private: bytes, public: bytes, whose: str) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    try:
        return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # a wrong length, or a low-order point whose agreement is all zeros
        raise SecAggProtocolError(f"the advertised key of '{whose}' is not a usable X25519 public key") from None


def _share_key(own_private: bytes, other: KeyAdvertisement, own: str) -> bytes:
    return _derive(_agree(own_private, other.cipher_public, other.site), "share-encryption", *sorted((own, other.site)))


def _pair_mask_key(own_private: bytes, other: KeyAdvertisement, own: str) -> bytes:
    return _derive(_agree(own_private, other.mask_public, other.site), "pairwise-mask", *sorted((own, other.site)))


def _seal(key: bytes, sender: str, recipient: str, plaintext: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)  # both directions of a pair share the key, so nonces are random, never counters
    return nonce + AESGCM(key).encrypt(nonce, plaintext, _label("share", sender, recipient))


def _open(key: bytes, message: EncryptedShares, recipient: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = message.ciphertext
    try:
        return AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _label("share", message.sender, recipient))
    except (InvalidTag, ValueError):
        raise SecAggProtocolError(f"the shares from '{message.sender}' to '{recipient}' do not decrypt: altered, or encrypted for another site") from None


def _rebuild(roster: Roster, site: str, shares: list[bytes], what: str) -> bytes:
    if len(shares) < roster.threshold:
        raise SecAggDropoutError(
            f"Unmasking: {len(shares)} shares of the {what} of '{site}' arrived (its holders: {', '.join(roster.holders(site))}), "
            f"fewer than reconstruction_threshold {roster.threshold}"
        )
    try:
        return shamir.combine(shares, roster.threshold)
    except shamir.ShamirError as error:
        raise SecAggProtocolError(f"Unmasking: the shares of the {what} of '{site}' do not combine: {error}") from None


def _advertised(advertisements: Sequence[KeyAdvertisement]) -> dict[str, KeyAdvertisement]:
    keys: dict[str, KeyAdvertisement] = {}
    public: set[bytes] = set()
    for advert in advertisements:
        if advert.site in keys or advert.cipher_public in public or advert.mask_public in public or advert.cipher_public == advert.mask_public:
            raise SecAggProtocolError(f"AdvertiseKeys: site '{advert.site}' appears twice or repeats a public key already advertised")
        keys[advert.site] = advert
        public |= {advert.cipher_public, advert.mask_public}
    return keys


def _roster(state: SiteState, stage: str) -> Roster:
    if state.roster is None:
        raise SecAggProtocolError(f"{stage}: site '{state.site}' has not completed ShareKeys")
    return state.roster


def _members(roster: Roster, sites: Sequence[str], what: str) -> tuple[str, ...]:
    members = tuple(sorted(set(sites)))
    unknown = [site for site in members if site not in roster.sites]
    if unknown or len(members) != len(sites):
        raise SecAggProtocolError(f"{what} must list distinct sites that advertised keys; got {list(sites)}")
    return members


def _unsigned(params: SecAggParams) -> np.dtype[Any]:
    import numpy as np

    return np.dtype(np.uint32 if params.modulus_bits == 32 else np.uint64)
