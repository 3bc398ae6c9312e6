"""How encrypted statistics and model updates travel inside Flower messages.

Ciphertexts ride as lists of bytes in a ConfigRecord (a site's update) or
as uint8 arrays in the ArrayRecord Flower's strategy loop carries as "the
global model" (the encrypted aggregate). Only the sites hold the secret key
(custody `clients`): they encrypt, the aggregator adds, the sites decrypt.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, RecordDict

PREFIX = "ckks-"


def to_arrays(chunks: Sequence[bytes]) -> ArrayRecord:
    return ArrayRecord({f"{PREFIX}{i:05d}": Array(np.frombuffer(chunk, dtype=np.uint8).copy()) for i, chunk in enumerate(chunks)})


def from_arrays(arrays: ArrayRecord) -> list[bytes]:
    return [arrays[key].numpy().tobytes() for key in sorted(arrays) if key.startswith(PREFIX)]


def is_encrypted(arrays: ArrayRecord) -> bool:
    return any(key.startswith(PREFIX) for key in arrays)


def protection_of(content: RecordDict) -> str:
    """How the ledger marks a message: `ckks` if it carries ciphertexts, `masked` if a masked sum, else `none`."""
    if any(is_encrypted(record) for record in content.array_records.values()) or any("ckks" in r for r in content.config_records.values()):
        return "ckks"
    return "masked" if "masked" in content.array_records else "none"

