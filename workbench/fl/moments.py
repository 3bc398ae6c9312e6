"""Feature moments for federated standardization, summed exactly under CKKS.

A site's count, feature sums and sums of squares say much about its
patients (its size, the mean age of its cohort). With `aggregation: ckks`
they travel as one encrypted vector of exact fixed-point limbs
(`crypto.secure_sum`), so the aggregator only adds them: under custody
`clients` it sends the encrypted total back to the sites, which decrypt it and
standardize alike; under custody `key_holder` it masks the total for the key
holder to decrypt, then holds the pooled moments as plain FedAvg's server would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tenseal as ts

from workbench.crypto import secure_sum as ss
from workbench.models.standardize import Standardizer

CONFIG_KEY = "ckks-moments"
"""Where train and evaluate messages carry the encrypted pooled moments (custody clients), instead of center and scale.
Not "ckks": a message's protection is that of the model it carries, and the first rounds' model is plain."""
CODEC = ss.FixedPoint(value_bits=60)
"""Values up to ±2^60 (≈ 1.2e18): a sum of squares of raw features over a large site stays far inside, and the
vector (1 + 2 · features values, 11 limbs each) still fits one ciphertext for up to 93 features at N=4096."""


def names(features: Sequence[str]) -> list[str]:
    """The moment vector's entries, in order: what an error names when one is out of range."""
    return ["count", *(f"sum[{f}]" for f in features), *(f"sum_of_squares[{f}]" for f in features)]


def encrypt(context: ts.Context, party: str, features: Sequence[str], parties: int, count: float, sums: np.ndarray, squares: np.ndarray) -> list[bytes]:
    """A site's moments as exact fixed-point limbs, encrypted for adding over `parties` sites."""
    CODEC.check_context(context, parties)
    vector = np.concatenate([[count], sums, squares])
    return ss.encrypt(context, CODEC.encode(vector, [f"{name} at {party!r}" for name in names(features)]))


def standardizer(totals: Sequence[int], features: int) -> tuple[Standardizer, float]:
    """The pooled standardizer and row count from exact totals of [count, sums..., squares...]."""
    values = CODEC.to_float(totals)
    count = float(values[0])
    return Standardizer.from_moments(count, values[1 : 1 + features], values[1 + features : 1 + 2 * features]), count


def decrypt(context: ts.Context, chunks: Sequence[bytes], features: int, parties: int) -> tuple[Standardizer, float]:
    """Custody clients: a site (holding the secret key) turns the encrypted total into the standardizer."""
    return standardizer(ss.decrypt(context, chunks, 1 + 2 * features, CODEC, parties), features)
