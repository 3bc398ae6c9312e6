"""How encrypted statistics and model updates travel inside Flower messages.

Ciphertexts ride as lists of bytes in a ConfigRecord (a site's update) or
as byte arrays in the ArrayRecord Flower's strategy loop carries as "the
global model" (the encrypted aggregate). Only the sites hold the secret key
(custody `clients`): they encrypt, the aggregator adds, the sites decrypt.
"""

from __future__ import annotations

from collections.abc import Sequence

from flwr.app import Array, ArrayRecord, RecordDict

from workbench.crypto.ckks import CKKSError

PREFIX = "ckks-"
STYPE = "tenseal.ckks_vector"
"""An Array's serialization type: its data is a serialized TenSEAL CKKS vector as is. Flower carries an Array's
bytes whatever its stype; NumPy's .npy form (stype numpy.ndarray) would add a header to write and parse each way
(0.4 ms a ciphertext, as much as loading it into TenSEAL) for nothing."""


def to_arrays(chunks: Sequence[bytes]) -> ArrayRecord:
    return ArrayRecord({f"{PREFIX}{i:05d}": Array(dtype="uint8", shape=(len(chunk),), stype=STYPE, data=bytes(chunk))
                        for i, chunk in enumerate(chunks)})


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


def protection_of(content: RecordDict) -> str:
    """How the ledger marks a message: `ckks` if it carries ciphertexts, `masked` if a masked sum, else `none`."""
    if any(is_encrypted(record) for record in content.array_records.values()) or any("ckks" in r for r in content.config_records.values()):
        return "ckks"
    return "masked" if "masked" in content.array_records else "none"

