"""Scoring a logistic model on encrypted rows: the querier's features stay under its key, the weights stay at the holder.

Layout: one ciphertext per feature, the querier's patients across its N/2 slots. The holder multiplies each by its
weight (a plaintext), adds them and the bias: plaintext products and ciphertext sums only, so the querier's public
context carries no Galois (rotation) or relinearization keys, and the reply is one ciphertext per N/2 patients.

Three things make the reply say no more than the logits of the rows the querier declared:
- the weights are laid over the declared rows' slots only, so a querier that packs more patients than it declared (and
  was charged for) gets noise for them;
- the holder adds a fresh public-key encryption of zero (re-randomization), so the reply's randomness is not a
  function of the query's;
- it floods every slot with Gaussian noise of sigma = precision / FLOOD_SIGMAS, at least 2^FLOOD_MARGIN_BITS above the
  CKKS noise its products leave, so the decryption error says (almost) nothing about the weights beyond the logit.

The parameters come from the precision asked, as for aggregation (`ckks.choose_parameters`): the scale holds the
flooded logit to `precision` with the flood above the CKKS noise, and the ring is the smallest whose 128-bit table
admits the chain.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.crypto import ckks

if TYPE_CHECKING:
    import numpy as np
    import tenseal as ts

LOGIT_BITS = 8
"""Room above the scale in the last prime: logits in ±2^7 (a probability within 1e-55 of 0 or 1 beyond)."""
FLOOD_SIGMAS = 8.0
"""The flood's sigma is the precision over this: a row's flood exceeds the precision with probability ~1e-15."""
FLOOD_MARGIN_BITS = 16
"""The flood's sigma over the bound on the CKKS noise it hides, in bits, at the least (2^40 would make the hiding
statistical; at 1e-4 that would need a 76-bit scale, past SEAL's 60-bit primes: stated, not claimed)."""
WEIGHT_BITS = 6
"""The parameters cover models whose raw-scale weights sum to at most 2^6 in absolute value; the holder checks its own."""
MAX_PRIME_BITS = 60
"""SEAL's largest coefficient-modulus prime."""


class InferenceError(ckks.CKKSError):
    """An encrypted query that cannot be answered as asked: wrong shape, a context with a secret key, too fine a precision."""


def inference_parameters(precision: float = 1e-4) -> ckks.CKKSParams:
    """The smallest ring and chain that score to `precision` with the flood FLOOD_MARGIN_BITS above the CKKS noise.

    Two data primes: the inputs are encrypted at scale 2^s on both, a product with a weight (at 2^s) is rescaled by
    the second, and the logit is left on the first with LOGIT_BITS to spare. The special prime (key generation only)
    is as large as the largest data prime, as SEAL requires.
    """
    scale_bits = math.ceil(ckks.NOISE_BITS + WEIGHT_BITS + FLOOD_MARGIN_BITS + math.log2(FLOOD_SIGMAS / precision))
    top = scale_bits + LOGIT_BITS
    if top > MAX_PRIME_BITS:
        raise InferenceError(f"precision {precision:g} needs a {scale_bits}-bit scale and a {top}-bit prime; SEAL's primes stop at {MAX_PRIME_BITS} bits")
    for degree, limit in sorted(ckks.MAX_MODULUS_BITS_128.items()):
        if 2 * top + scale_bits <= limit:
            params = ckks.CKKSParams(poly_modulus_degree=degree, data_bits=[top, scale_bits], special_bits=top, scale_bits=scale_bits)
            params.check_security()
            return params
    raise InferenceError(f"no ring in the 128-bit table holds a {2 * top + scale_bits}-bit modulus")  # unreachable below 60-bit primes


def flood_sigma(precision: float) -> float:
    return precision / FLOOD_SIGMAS


def noise_bound(params: ckks.CKKSParams, weights: np.ndarray) -> float:
    """Bound on the CKKS noise in one logit before flooding: each input's fresh noise (< 2^NOISE_BITS at scale 1) times
    its weight, plus the bias's and the re-randomization's encodings."""
    import numpy as np

    return float((np.abs(weights).sum() + 2.0) * 2.0 ** (ckks.NOISE_BITS - params.scale_bits))


def flood_margin_bits(params: ckks.CKKSParams, weights: np.ndarray, precision: float) -> float:
    """log2 of the flood's sigma over the noise bound: how far the flood drowns what the products leave."""
    return math.log2(flood_sigma(precision) / noise_bound(params, weights))


def encrypt_rows(secret: ts.Context, X: np.ndarray) -> list[list[bytes]]:
    """The querier's rows, one encrypted vector per feature column (symmetric encryption: it holds the secret key)."""
    if not secret.is_private():
        raise InferenceError("a query is encrypted with the querier's own secret key; this context holds none")
    return [ckks.encrypt(secret, X[:, j]) for j in range(X.shape[1])]


def score(public: ts.Context, query: Sequence[bytes], rows: int, weights: np.ndarray, bias: float, precision: float) -> list[bytes]:
    """The holder's answer: X @ weights + bias for the `rows` declared, re-randomized and flooded, one ciphertext per N/2 rows.

    `query` is `encrypt_rows`'s columns one after the other; its length is checked against the declared rows before
    any ciphertext is loaded.
    """
    import numpy as np
    import tenseal as ts

    if public.is_private():
        raise InferenceError("the querier's context carries its secret key; a querier sends its public context only")
    slots = ckks.slot_count(public)
    chunks = math.ceil(rows / slots)
    if len(query) != len(weights) * chunks:
        raise InferenceError(
            f"the query holds {len(query)} ciphertexts; {len(weights)} feature columns of {rows} declared rows at {slots} a "
            f"ciphertext make {len(weights) * chunks}"
        )
    sigma = flood_sigma(precision)
    noise = np.random.default_rng(secrets.randbits(128))  # never the recipe seed: the querier knows it
    replies = []
    for chunk in range(chunks):
        live = np.zeros(slots)
        live[: min(slots, rows - chunk * slots)] = 1.0
        total = None
        for j, weight in enumerate(weights):
            if weight == 0.0:
                continue  # SEAL refuses a product with an all-zero plaintext (a "transparent" ciphertext)
            term = ckks.load_vector(public, query[j * chunks + chunk], f"feature column {j}, ciphertext {chunk}") * (weight * live).tolist()
            total = term if total is None else total + term
        flood = (bias * live + noise.normal(0.0, sigma, slots)).tolist()
        fresh_zero = ts.ckks_vector(public, [0.0] * slots)
        total = fresh_zero + flood if total is None else total + flood + fresh_zero
        replies.append(total.serialize())
    return replies
