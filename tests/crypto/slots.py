"""What a curious key holder can read: every slot of a ciphertext, not only the ones a vector declares."""

from __future__ import annotations

import numpy as np
import tenseal as ts
import tenseal.sealapi as seal


def every_slot(secret: ts.Context, chunks: list[bytes]) -> np.ndarray:
    """Decrypt and decode all N/2 slots of each ciphertext with SEAL directly, past TenSEAL's declared vector size."""
    encoder = seal.CKKSEncoder(secret.data.seal_context())
    decoded = []
    for chunk in chunks:
        for ciphertext in ts.ckks_vector_from(secret, chunk).data.ciphertext():
            plain = seal.Plaintext()
            secret.data.decryptor().decrypt(ciphertext, plain)
            decoded.append(np.asarray(encoder.decode_double(plain)))
    return np.concatenate(decoded)
