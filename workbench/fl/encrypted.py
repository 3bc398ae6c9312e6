"""How ciphertexts travel as "the global model" inside Flower messages.

Flower's strategy loop carries the global model as an ArrayRecord; when the
aggregator may not read the aggregate (CKKS, custody `clients`), the encrypted
sum rides there instead, one byte array per ciphertext, for the sites to decrypt.
(A site's own encrypted update rides as a list of bytes in a ConfigRecord.)
"""

from __future__ import annotations

from collections.abc import Sequence

from flwr.app import Array, ArrayRecord

from workbench.crypto.ckks import CKKSError

PREFIX = "ckks-"
STYPE = "tenseal.ckks_vector"
"""An Array's serialization type: its data is a serialized TenSEAL CKKS vector as is. Flower carries an Array's
bytes whatever its stype; NumPy's .npy form (stype numpy.ndarray) would add a header to write and parse each way
(0.4 ms a ciphertext, as much as loading it into TenSEAL) for nothing."""


def to_arrays(chunks: Sequence[bytes]) -> ArrayRecord:
    return ArrayRecord({f"{PREFIX}{i:05d}": Array(dtype="uint8", shape=(len(chunk),), stype=STYPE, data=bytes(chunk)) for i, chunk in enumerate(chunks)})


def from_arrays(arrays: ArrayRecord) -> list[bytes]:
    """The ciphertexts in order; an array of another serialization type is not one of ours and fails loudly."""
    chunks = []
    for key in sorted(key for key in arrays if key.startswith(PREFIX)):
        if arrays[key].stype != STYPE:
            raise CKKSError(f"array {key!r} has serialization type {arrays[key].stype!r}, not a ciphertext ({STYPE})")
        chunks.append(bytes(arrays[key].data))
    return chunks


def is_encrypted(arrays: ArrayRecord) -> bool:
    return any(key.startswith(PREFIX) for key in arrays)
