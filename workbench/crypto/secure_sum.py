"""Exact sums over CKKS: fixed-point integers split into small limbs, encrypted at a low scale.

CKKS adds approximately, and the contexts `ckks_keys` makes leave only ~2^10
above their scale: a sum of squares of raw features over several sites
(creatinine², daily steps² × rows) would wrap around the modulus. So statistics
are not encrypted as floats. Each value becomes a fixed-point integer
(`frac_bits` below the point, `value_bits` above), cut into signed limbs of
`limb_bits` bits; the limbs are encrypted at scale 2^SCALE_BITS, far below the
contexts' own scale. That leaves 2^24 (custody clients, one 45-bit prime) or
more of headroom for a limb summed over many parties, while the noise of a sum
stays ~2^-5 (measured: ≤ 0.03 for 30 parties at N=4096 and N=8192). After
decryption every limb sum is rounded to the integer it must be, and the limbs
recombine with Python integers: the total equals the sum of the parties'
fixed-point integers exactly, whatever their magnitude.

Rounding also checks: a limb sum further than `TOLERANCE` from an integer, or
larger than the parties' limbs can add up to, means a ciphertext was altered
or summed with a wrong one, and decryption says so instead of returning a
wrong total.

Custody `key_holder`: the aggregator adds an integer mask, uniform in
±2^MASK_BITS, before the key holder decrypts. The key holder rounds before it
answers, so what leaves it is an integer: the masked limb sum, without the
decryption noise (whose release can leak the secret key, Li & Micciancio 2021).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from workbench.crypto import ckks

if TYPE_CHECKING:  # numpy and tenseal load where they are used: `workbench validate` reads the parameter models only
    import numpy as np
    import tenseal as ts

SCALE_BITS = 20
"""log2 of the scale limbs are encrypted at. Measured (3–30 parties, both custodies' contexts): largest error of a
decrypted sum 0.006–0.05 at 2^20, 0.14–0.8 at 2^16 (too close to 0.5), 0.0005–0.003 at 2^24 (but 2^4 less headroom)."""
MASK_BITS = 44
"""Integer masks are uniform in ±2^MASK_BITS. CKKS decodes through float64, so a masked limb sum of size 2^M decodes
with an error ≈ 2^(M-50). Measured with `ckks.masking_parameters()` (N=4096, 38+38-bit primes), scale 2^20, 10 parties,
16k slots each: largest distance from the true integer 0.02 at 2^44, 0.05 at 2^46, 0.19 at 2^48, 0.38 at 2^49, 0.75
(wrong roundings) at 2^50; at N=8192 with 60+40-bit primes the same within 0.01.
2^44 keeps the error ten times under TOLERANCE."""
TOLERANCE = 0.25
"""Largest distance of a decrypted limb sum from an integer that is still noise; beyond it, decryption refuses."""
HEADROOM_MARGIN_BITS = 2
"""Bits kept free between the largest limb sum (or masked limb sum) and the modulus, against wrap-around."""


class SecureSumError(ckks.CKKSError):
    """A sum that cannot be computed exactly: a value out of its declared range, too many parties, a bad ciphertext."""


class FixedPoint(BaseModel):
    """How statistics become integers and limbs; every party of a sum must use the same one.

    Defaults: resolution 2^-24 (≈ 6e-8), values up to ±2^40 (≈ 1.1e12) per party, 8-bit limbs (9 per value). Small
    limbs cost slots (plentiful: 2048 or 4096 a ciphertext) and buy hiding: the key holder's view of a masked limb
    sum is within P·2^(limb_bits-1) / 2^MASK_BITS of any other's, so 8 bits give P·2^-37 per limb sum.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    frac_bits: int = Field(24, ge=0, le=52, description="Bits below the binary point: values are multiples of 2^-frac_bits.")
    value_bits: int = Field(40, ge=1, le=200, description="Each party's value must lie within ±2^value_bits.")
    limb_bits: int = Field(8, ge=2, le=20, description="Bits per encrypted limb.")

    @property
    def limbs(self) -> int:
        """Balanced limbs of b bits hold magnitudes below 2^(b·L - 1); one more bit than the range needs."""
        return math.ceil((self.value_bits + self.frac_bits + 1) / self.limb_bits)

    @property
    def bound(self) -> float:
        return 2.0**self.value_bits

    def encode(self, values: Sequence[float] | np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Fixed-point limbs, value after value (len(values) · limbs integers in [-2^(b-1), 2^(b-1))).

        `names` say which statistic each value is, for the error when one is not finite or out of range.
        """
        import numpy as np

        if len(values) != len(names):
            raise ValueError(f"{len(values)} values but {len(names)} names")
        limbs = np.zeros(len(values) * self.limbs, dtype=np.int64)
        for i, (value, name) in enumerate(zip(values, names)):
            value = float(value)
            if not math.isfinite(value) or abs(value) >= self.bound:
                raise SecureSumError(f"{name} is {value:.6g}, outside the declared range ±2^{self.value_bits} (±{self.bound:.3g}); declare a larger value_bits")
            limbs[i * self.limbs : (i + 1) * self.limbs] = self._split(self.to_integer(value))
        return limbs

    def to_integer(self, value: float) -> int:
        """The fixed-point integer a party encrypts for `value` (what an exact total is the sum of)."""
        return int(round(float(value) * 2**self.frac_bits))

    def _split(self, integer: int) -> list[int]:
        half, base, digits = 1 << (self.limb_bits - 1), 1 << self.limb_bits, []
        for _ in range(self.limbs):
            digit = integer % base
            digit -= base if digit >= half else 0
            digits.append(digit)
            integer = (integer - digit) >> self.limb_bits
        return digits

    def combine(self, limb_sums: np.ndarray) -> list[int]:
        """Exact totals (Python integers, in units of 2^-frac_bits) from integer limb sums."""
        import numpy as np

        rows = np.asarray(limb_sums, dtype=np.int64).reshape(-1, self.limbs)
        return [sum(int(limb) << (self.limb_bits * j) for j, limb in enumerate(row)) for row in rows]

    def to_float(self, totals: Sequence[int]) -> np.ndarray:
        """Totals as float64, correctly rounded (Python's int/int division)."""
        import numpy as np

        return np.array([total / 2**self.frac_bits for total in totals], dtype=np.float64)

    def limb_sum_bound(self, parties: int) -> int:
        """The largest magnitude a limb summed over `parties` honest parties can have."""
        return parties << (self.limb_bits - 1)

    def check_context(self, context: ts.Context, parties: int, *, masked: bool = False) -> None:
        """Refuse a context whose modulus cannot hold `parties` limb sums (plus a mask) at scale 2^SCALE_BITS."""
        modulus_bits = context.data.seal_context().first_context_data().total_coeff_modulus_bit_count()
        room = modulus_bits - 1 - SCALE_BITS - HEADROOM_MARGIN_BITS
        needed = (MASK_BITS + 1) if masked else math.ceil(math.log2(self.limb_sum_bound(parties) + 1))
        if needed > room:
            what = f"a ±2^{MASK_BITS} mask" if masked else f"{self.limb_bits}-bit limbs summed over {parties} parties"
            raise SecureSumError(
                f"the CKKS context's {modulus_bits}-bit data modulus leaves {room} bits above scale 2^{SCALE_BITS}, "
                f"too few for {what} (needs {needed}); provision keys with a larger modulus "
                "(ckks_keys precision ≤ 1e-6, or custody key_holder for masking)"
            )


def encrypt(context: ts.Context, limbs: np.ndarray) -> list[bytes]:
    """Limbs encrypted at scale 2^SCALE_BITS, one full (zero-padded) ciphertext per N/2 limbs; `ckks.add` and `ckks.decrypt` take them."""
    import tenseal as ts

    return [ts.ckks_vector(context, part, scale=2.0**SCALE_BITS).serialize() for part in ckks.slot_parts(limbs, ckks.slot_count(context))]


def round_limbs(decrypted: np.ndarray, bound: float) -> np.ndarray:
    """The integers decrypted limb sums stand for; refuses values that are no noisy integer of magnitude ≤ bound."""
    import numpy as np

    values = np.asarray(decrypted, dtype=np.float64)
    rounded = np.rint(values)
    off = np.abs(values - rounded)
    if len(values) and (not np.all(np.isfinite(values)) or off.max() > TOLERANCE or np.abs(rounded).max() > bound):
        worst = int(np.nanargmax(np.where(np.isfinite(values), off, np.inf)))
        raise SecureSumError(
            f"decrypted limb sums are not the integers they must be (limb {worst}: {values[worst]:.6g}, bound ±{bound:.3g}): "
            "a ciphertext was altered, encrypted under another key or codec, or more parties were summed than declared"
        )
    return rounded.astype(np.int64)


def decrypt(context: ts.Context, chunks: Sequence[bytes], count: int, codec: FixedPoint, parties: int) -> list[int]:
    """Exact totals of `count` values summed over `parties` parties (custody clients: any hospital holds the key)."""
    limbs = ckks.decrypt(context, chunks, count * codec.limbs)
    return codec.combine(round_limbs(limbs, codec.limb_sum_bound(parties)))


@dataclass(frozen=True)
class Masked:
    """An encrypted sum with an integer mask added, and the mask, which never leaves the party that drew it."""

    chunks: list[bytes]
    mask: np.ndarray


def mask(context: ts.Context, chunks: Sequence[bytes], count: int, codec: FixedPoint, parties: int) -> Masked:
    """Add a fresh integer mask, uniform in ±2^MASK_BITS, to an encrypted sum of `count` values (custody key_holder).

    Like `ckks.mask`, the mask comes from the operating system's randomness, never from the recipe seed, and is added
    as a plaintext over every slot; unlike it, the mask is an integer (encoded at the limbs' scale), so the masked sum still rounds exactly.
    """
    import numpy as np

    codec.check_context(context, parties, masked=True)
    every_slot = len(chunks) * ckks.slot_count(context)  # the padding slots too: nothing the key holder decodes is bare
    values = np.random.default_rng(secrets.randbits(128)).integers(-(2**MASK_BITS), 2**MASK_BITS, every_slot, endpoint=True)
    return Masked(ckks.add_plain(context, chunks, values.astype(np.float64)), values[: count * codec.limbs])


def decrypt_masked(context: ts.Context, chunks: Sequence[bytes], length: int, codec: FixedPoint, parties: int) -> np.ndarray:
    """The key holder's side: decrypt a masked sum of `length` limbs and round it, so no decryption noise leaves."""
    return round_limbs(ckks.decrypt(context, chunks, length), 2.0**MASK_BITS + codec.limb_sum_bound(parties))


def unmask(masked_limbs: np.ndarray, masked: Masked, codec: FixedPoint, parties: int) -> list[int]:
    """The aggregator's side: exact totals from the key holder's rounded masked limb sums."""
    import numpy as np

    limbs = np.asarray(masked_limbs, dtype=np.int64) - masked.mask
    if len(limbs) != len(masked.mask) or (len(limbs) and np.abs(limbs).max() > codec.limb_sum_bound(parties)):
        raise SecureSumError(
            f"the key holder's decryption does not unmask to limb sums of {parties} parties: the masked sum was altered or decrypted with another key"
        )
    return codec.combine(limbs)


def statistical_distance(codec: FixedPoint, parties: int, limb_sums: int) -> float:
    """Bound on how far the key holder's view of `limb_sums` masked limb sums is from its view of any other sums.

    For an integer S with |S| ≤ B masked by R uniform on {-2^M..2^M}, the views of two sums differ by at most
    2B / (2^(M+1) + 1) < B / 2^M in statistical distance; distances add over independent masks.
    """
    return limb_sums * codec.limb_sum_bound(parties) / 2.0**MASK_BITS
