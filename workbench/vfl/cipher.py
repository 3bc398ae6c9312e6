"""The arithmetic vertical training needs on vectors that cross parties, in the clear or under the arbiter's CKKS key.

Vertical logistic regression (protocol.py) moves four kinds of vectors: the vendor's partial logits, the joint
logits, the probabilities and the residuals, one value per aligned row. Under `protection: ckks` they travel
encrypted under a key only the arbiter holds; the vendor and the hospitals work on them with the public key alone:

* `add_plain` - a hospital adds its own partial logits (or subtracts its labels) to an encrypted vector;
* `inner` - a party multiplies an encrypted residual by its own feature columns, one plaintext multiplication per
  column and ciphertext, and adds the products of every ciphertext: per column, one ciphertext of slot-wise partial
  sums whose slots add up to that column's gradient. No rotation is needed, so no Galois key exists anywhere;
* `mask` - before the arbiter decrypts such partial sums it sees them only under a uniform ±2^28 mask per slot,
  which the sender subtracts afterwards (`unmask`), summing the slots to one value per column.

`Plain` does the same arithmetic in the clear (protection none), for teaching and as the baseline that shows what
the encryption costs: there the sender's vectors are readable by their receiver, which the ledger records.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
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
    encrypted = False

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
    encrypted = True

    def __init__(self, context: ts.Context) -> None:
        self.context = context
        self.slots = ckks.slot_count(context)

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
        """Per column j, Σ over ciphertexts c of vector_c ⊙ column_j[c], plus clear[j] in its first slot: slot-wise
        partial sums of columns.T @ vector + clear, serialized once."""
        import numpy as np

        vectors = [ckks.load_vector(self.context, chunk, f"ciphertext {i}") for i, chunk in enumerate(ckks.unpack(payload, "an encrypted vector"))]
        sums = []
        for j in range(columns.shape[1]):
            parts = ckks.slot_parts(columns[:, j], self.slots)
            total = vectors[0] * parts[0].tolist()
            for vector, part in zip(vectors[1:], parts[1:]):
                total += vector * part.tolist()
            first = np.zeros(self.slots)
            first[0] = clear[j]
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

    def unmask(self, opened: np.ndarray, mask: np.ndarray, columns: int) -> np.ndarray:
        """The masked slot-wise sums as the arbiter decrypted them, less the mask, summed to one value per column."""
        values: np.ndarray = (opened - mask).reshape(columns, self.slots).sum(axis=1)
        return values


Cipher = Plain | Encrypted
