"""The arithmetic vertical training needs on vectors that cross parties, in the clear or under the arbiter's CKKS key.

Vertical logistic regression (protocol.py) moves four kinds of vectors: the vendor's partial logits, the joint
logits, the probabilities and the residuals, one value per aligned row. Under `protection: ckks` they travel
encrypted under a key only the arbiter holds; the vendor and the hospitals work on them with the public key alone:

* `add_plain` - a hospital adds its own partial logits (or subtracts its labels) to an encrypted vector;
* `inner` - a party multiplies an encrypted residual by its own feature columns, one plaintext multiplication per
  column group and ciphertext, and adds the products of every ciphertext: per group, one ciphertext of slot-wise
  partial sums whose slots add up to its columns' gradients. No rotation is needed, so no Galois key exists anywhere;
* `masked_sum` - before the arbiter decrypts such partial sums it sees them only under a uniform ±2^28 mask per
  slot, which the sender subtracts afterwards (`unmask`), summing the slots to one value per column;
* `mask_rows` - a hospital keeps its held-out rows of an encrypted vector and masks every slot, so that the arbiter
  decrypts the held-out scores for it without reading them.

A column group is one column when a hospital's rows fill a ciphertext or more. When every hospital's rows fit in a
fraction of the slots, the `Layout` has the arbiter encrypt the probabilities several times over, one copy per block
of slots; a residual then multiplies a plaintext of as many columns side by side, one per block, and one
ciphertext carries the partial sums of all of them: fewer multiplications, and far fewer bytes, for small sites.

`Plain` does the same arithmetic in the clear (protection none), for teaching and as the baseline that shows what
the encryption costs: there the sender's vectors are readable by their receiver, which the ledger records.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.crypto import ckks
from workbench.ledger import Protection

if TYPE_CHECKING:
    import numpy as np
    import tenseal as ts

PARAMS = ckks.CKKSParams(poly_modulus_degree=8192, data_bits=[40, 40, 40], special_bits=60, scale_bits=40)
"""One plaintext multiplication deep (a residual times a feature column), then a ±2^28 mask: after the rescale the
two 40-bit primes left hold scale 2^40 times values below 2^29, with 11 bits to spare; 180 bits in all, inside
the 218 that 128-bit security allows at N=8192. Fresh encryptions decrypt within about 1e-8."""


SLOTS = PARAMS.poly_modulus_degree // 2


@dataclass(frozen=True)
class Layout:
    """Where a row vector sits in a ciphertext's slots: the same at every hospital, so that their partial sums add slot
    by slot. `copies` blocks of `block` slots each hold the vector once; with one copy the block is the whole
    ciphertext and a long vector spans several."""

    block: int
    copies: int

    @classmethod
    def for_rows(cls, longest: int, columns: int, slots: int = SLOTS) -> Layout:
        """As many copies of the longest hospital's vector as fit, but no more than the widest block has columns."""
        copies = max(1, min(slots // max(longest, 1), columns))
        return cls(longest if copies > 1 else slots, copies)

    def replicate(self, values: np.ndarray) -> np.ndarray:
        """The vector once per block, zero-padded to the block."""
        import numpy as np

        if self.copies == 1:
            return values
        padded = np.zeros(self.block)
        padded[: len(values)] = values
        return np.tile(padded, self.copies)

    def groups(self, columns: np.ndarray) -> list[np.ndarray]:
        """The plaintexts a replicated vector multiplies: `copies` columns side by side, each zero-padded to the block."""
        import numpy as np

        if self.copies == 1:
            return [columns[:, j] for j in range(columns.shape[1])]
        rows, width = columns.shape
        padded = np.zeros((math.ceil(width / self.copies) * self.copies, self.block))
        padded[:width, :rows] = columns.T
        return list(padded.reshape(-1, self.copies * self.block))

    def first_slots(self, values: np.ndarray) -> list[np.ndarray]:
        """One plaintext per group with each column's value in the first slot of that column's block."""
        import numpy as np

        padded = np.zeros(math.ceil(len(values) / self.copies) * self.copies)
        padded[: len(values)] = values
        plains = np.zeros((len(padded) // self.copies, SLOTS))
        plains[:, : self.copies * self.block : self.block] = padded.reshape(-1, self.copies)
        return list(plains)

    def sums(self, slot_values: np.ndarray, columns: int) -> np.ndarray:
        """Per column, the sum of its block's slots, from the slots of every group's ciphertext."""
        per_group = slot_values.reshape(-1, SLOTS)[:, : self.copies * self.block]
        totals: np.ndarray = per_group.reshape(-1, self.block).sum(axis=1)[:columns]
        return totals


def to_bytes(values: np.ndarray | Sequence[float]) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=np.float64), allow_pickle=False)
    return buffer.getvalue()


def from_bytes(payload: bytes) -> np.ndarray:
    import numpy as np

    values: np.ndarray = np.load(io.BytesIO(payload), allow_pickle=False)
    return values


class Plain:
    """Vectors in the clear: every receiver reads them."""

    protection = Protection.NONE

    def replicate(self, values: np.ndarray) -> np.ndarray:
        """In the clear the vector travels once: no ciphertext's slots to fill."""
        return values

    def encrypt(self, values: np.ndarray) -> bytes:
        return to_bytes(values)

    def add_plain(self, payload: bytes, values: np.ndarray) -> bytes:
        return to_bytes(from_bytes(payload) + values)

    def decrypt(self, payload: bytes, length: int) -> np.ndarray:
        return from_bytes(payload)[:length]

    def inner(self, payload: bytes, columns: np.ndarray, clear: np.ndarray) -> bytes:
        """columns.T @ vector + clear: each column's gradient term, with what the party computed in the clear added."""
        return to_bytes(columns.T @ from_bytes(payload)[: len(columns)] + clear)

    def masked_sum(self, payloads: list[bytes]) -> tuple[bytes, np.ndarray]:
        """The sum, unmasked: in the clear there is no arbiter to hide it from."""
        import numpy as np

        return to_bytes(np.sum([from_bytes(payload) for payload in payloads], axis=0)), np.zeros(0)


class Encrypted:
    """Vectors under the arbiter's CKKS key: `context` is public at the vendor and the hospitals, secret at the arbiter."""

    protection = Protection.CKKS

    def __init__(self, context: ts.Context, layout: Layout) -> None:
        self.context = context
        self.layout = layout
        self.slots = ckks.slot_count(context)
        if self.slots != SLOTS:
            raise ValueError(f"a vertical-training context has {SLOTS} slots (PARAMS); this one has {self.slots}")

    def replicate(self, values: np.ndarray) -> np.ndarray:
        return self.layout.replicate(values)

    def encrypt(self, values: np.ndarray) -> bytes:
        return ckks.pack(ckks.encrypt(self.context, values))

    def add_plain(self, payload: bytes, values: np.ndarray) -> bytes:
        import numpy as np

        chunks = ckks.unpack(payload, "an encrypted vector")
        padded = np.zeros(len(chunks) * self.slots)
        padded[: len(values)] = values
        return ckks.pack(ckks.add_plain(self.context, chunks, padded))

    def decrypt(self, payload: bytes, length: int) -> np.ndarray:
        return ckks.decrypt(self.context, ckks.unpack(payload, "an encrypted vector"), length)

    def inner(self, payload: bytes, columns: np.ndarray, clear: np.ndarray) -> bytes:
        """Per column group g, Σ over ciphertexts c of vector_c ⊙ group_g[c], plus each column's clear value in the
        first slot of its block: slot-wise partial sums of columns.T @ vector + clear, serialized once."""
        vectors = [ckks.load_vector(self.context, chunk, f"ciphertext {i}") for i, chunk in enumerate(ckks.unpack(payload, "an encrypted vector"))]
        sums = []
        for group, first in zip(self.layout.groups(columns), self.layout.first_slots(clear)):
            parts = ckks.slot_parts(group, self.slots)
            total = vectors[0] * parts[0].tolist()
            for vector, part in zip(vectors[1:], parts[1:]):
                total += vector * part.tolist()
            total += first.tolist()
            sums.append(total.serialize())
        return ckks.pack(sums)

    def masked_sum(self, payloads: list[bytes]) -> tuple[bytes, np.ndarray]:
        """The element-wise sum of several parties' partial sums under a fresh mask (`ckks.mask`), serialized once."""
        import numpy as np

        totals = ckks.sum_vectors(self.context, [ckks.unpack(payload, "partial sums") for payload in payloads])
        values = ckks.fresh_mask(len(totals) * self.slots)
        masked = [(total + values[i * self.slots : (i + 1) * self.slots].tolist()).serialize() for i, total in enumerate(totals)]
        return ckks.pack(masked), np.asarray(values)

    def mask_rows(self, payload: bytes, own: np.ndarray, keep: np.ndarray) -> tuple[bytes, np.ndarray]:
        """(vector + own) ⊙ keep under a fresh mask on every slot, and the mask: row values the arbiter decrypts for
        their owner without reading them. One plaintext multiplication deep, as `inner`."""
        import numpy as np

        chunks = ckks.unpack(payload, "an encrypted vector")
        own_parts, keep_parts = ckks.slot_parts(own, self.slots), ckks.slot_parts(keep, self.slots)
        mask = ckks.fresh_mask(len(chunks) * self.slots)
        masked = []
        for i, chunk in enumerate(chunks):
            vector = ckks.load_vector(self.context, chunk, f"ciphertext {i}")
            slots = slice(i * self.slots, (i + 1) * self.slots)
            masked.append(((vector + own_parts[i].tolist()) * keep_parts[i].tolist() + mask[slots].tolist()).serialize())
        return ckks.pack(masked), np.asarray(mask)

    def unmask(self, opened: np.ndarray, mask: np.ndarray, columns: int) -> np.ndarray:
        """The masked slot-wise sums as the arbiter decrypted them, less the mask, summed to one value per column."""
        return self.layout.sums(opened - mask, columns)


Cipher = Plain | Encrypted
