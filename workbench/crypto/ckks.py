"""CKKS (TenSEAL) for adding model updates: lean parameters, contexts by custody, vectors as bytes.

Aggregation only adds ciphertexts, so the modulus chain needs one data prime
(plus the special prime TenSEAL's key generation requires) and no Galois keys.
The data prime is sized from the precision asked: SEAL compresses serialized
ciphertexts, so every bit not needed is a bit not sent. Sizes stay inside the
HE standard's 128-bit table for the ring degree.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # numpy and tenseal load where they are used: `workbench validate` reads CKKSParams only
    import numpy as np
    import tenseal as ts

SECRET_ITEM = "ckks/secret"
"""Where a party's store keeps a serialized context with the secret key."""
AGGREGATOR_ITEM = "ckks/aggregator"
"""Where the aggregator's store keeps its context without the secret key."""
PUBLIC_ITEM = "ckks/public"
"""Where a hospital keeps the public context it encrypts with (custody `key_holder`)."""
CUSTODY_ITEM = "ckks/custody"
"""Where the aggregator keeps who holds the secret key: {"custody": ..., "key_holder": ...}."""

# Largest total modulus (bits) for 128-bit classical security, ternary secrets (HE standard, 2018).
MAX_MODULUS_BITS_128 = {2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
NOISE_BITS = 13
"""log2 of the error of a fresh encryption at scale 1, with margin (measured ≈ 2^12 at N=4096; benchmarks/he.py)."""
VALUE_BITS = 10
"""Headroom above the scale for the summed values (|sum| < 2^10 before the modulus wraps)."""


class CKKSError(WorkbenchError, ValueError):
    """A ciphertext or context is unusable: tampered, truncated, or from another key."""


MASK_BITS = 28
"""Masks are uniform in ±2^MASK_BITS: CKKS decodes to float64, whose 52-bit mantissa leaves 2^(28-52) ≈ 6e-8 of
resolution at that size; a larger mask would cost the 1e-6 precision."""
VALUE_BOUND = 16.0
"""Masked values are clipped to ±VALUE_BOUND first, so the hiding can be stated: statistical distance ≤ B / 2^MASK_BITS
per value (2^-24 ≈ 6e-8), hence ≤ P · 2^-24 for P values."""


class CKKSParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    poly_modulus_degree: int = Field(4096, description="Ring degree N; N/2 values per ciphertext.")
    data_bits: list[int] = Field(default_factory=lambda: [45], min_length=1, description="Bits of the data primes that hold the values.")
    special_bits: int = Field(45, ge=20, le=60, description="Bits of the special prime (key generation only).")
    scale_bits: int = Field(35, ge=10, le=58, description="log2 of the encoding scale: precision ≈ 2^(NOISE_BITS - scale_bits).")

    def check_security(self) -> None:
        limit = MAX_MODULUS_BITS_128.get(self.poly_modulus_degree)
        total = sum(self.data_bits) + self.special_bits
        if limit is None:
            raise ValueError(f"poly_modulus_degree must be one of {sorted(MAX_MODULUS_BITS_128)}, got {self.poly_modulus_degree}")
        if total > limit:
            raise ValueError(f"a {total}-bit modulus at N={self.poly_modulus_degree} is below 128-bit security (at most {limit} bits)")
        if self.scale_bits + VALUE_BITS > sum(self.data_bits):
            raise ValueError(f"scale 2^{self.scale_bits} leaves no room for values under {sum(self.data_bits)} bits of data primes")

    @property
    def coeff_mod_bit_sizes(self) -> list[int]:
        return [*self.data_bits, self.special_bits]

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2


def choose_parameters(precision: float = 1e-6, clients: int = 10, poly_modulus_degree: int = 4096) -> CKKSParams:
    """The leanest parameters whose sum of `clients` fresh encryptions is within `precision`."""
    scale_bits = math.ceil(NOISE_BITS + math.log2(math.sqrt(clients) / precision))
    data_bits = scale_bits + VALUE_BITS
    params = CKKSParams(poly_modulus_degree=poly_modulus_degree, data_bits=[data_bits], special_bits=data_bits, scale_bits=scale_bits)
    params.check_security()
    return params


def masking_parameters() -> CKKSParams:
    """For custody `key_holder`: room for values plus a 2^MASK_BITS mask, at N=4096 within the 128-bit table.

    Two 38-bit data primes hold scale 2^37 times a masked value (|v| < 2^29) with room to spare; the special
    prime, used only at key generation (no relinearization or Galois keys exist), takes the 33 bits the table
    leaves. Measured: a masked sum of 10 updates decrypts within 3.5e-7; a ciphertext is ~92 kB for 2048 values,
    ~1.7x the bytes of `choose_parameters` per value: the price of a key holder that sees only masked sums.
    """
    params = CKKSParams(poly_modulus_degree=4096, data_bits=[38, 38], special_bits=33, scale_bits=37)
    params.check_security()
    return params


def mask(context: ts.Context, chunks: Sequence[bytes], length: int) -> tuple[list[bytes], np.ndarray]:
    """Add a fresh uniform mask in ±2^MASK_BITS to every slot of an encrypted vector, as a plaintext (`add_plain`).

    Returns the masked ciphertexts and the mask of the first `length` slots, the ones that carry values. The mask
    comes from the operating system's randomness, never from the recipe seed: a key holder who knows the recipe
    must not be able to recompute it.
    """
    values = fresh_mask(len(chunks) * slot_count(context))
    return add_plain(context, chunks, values), values[:length]


def fresh_mask(size: int) -> np.ndarray:
    """`size` uniform values in ±2^MASK_BITS from the operating system's randomness (never the recipe seed)."""
    import numpy as np

    values: np.ndarray = np.random.default_rng(secrets.randbits(128)).uniform(-(2.0**MASK_BITS), 2.0**MASK_BITS, size)
    return values


def add_plain(context: ts.Context, chunks: Sequence[bytes], values: np.ndarray) -> list[bytes]:
    """Plain `values`, one per slot of every ciphertext, added to an encrypted vector at each ciphertext's own scale.

    What a decryptor sees is the same as if the values had been encrypted and added, without an encryption per
    call and without its noise: how masks are applied. A mask must cover every slot, so a ciphertext that does not
    fill its slots is refused: TenSEAL would have replicated its values into the slots a shorter mask leaves bare.
    """
    slots = slot_count(context)
    vectors = [load_vector(context, chunk, f"ciphertext {i}") for i, chunk in enumerate(chunks)]
    short = [i for i, vector in enumerate(vectors) if vector.size() != slots]
    if short:
        raise CKKSError(
            f"ciphertext {short[0]} holds {vectors[short[0]].size()} values in {slots} slots: CKKS replicates a short "
            "vector across its slots, so a mask over its values would leave copies bare; encrypt with ckks.encrypt, "
            "which pads every ciphertext to its slot count"
        )
    if len(values) != len(vectors) * slots:
        raise CKKSError(f"the encrypted vector has {len(vectors) * slots} slots, but {len(values)} plain values were given to add")
    return [(vector + values[i * slots : (i + 1) * slots].tolist()).serialize() for i, vector in enumerate(vectors)]


def slot_parts(values: np.ndarray, slots: int) -> list[np.ndarray]:
    """`values` cut into one part per ciphertext, each zero-padded to the full slot count.

    TenSEAL encodes a vector shorter than the slot count by repeating it across all N/2 slots. A masked ciphertext
    would then hand the key holder unmasked copies of every value in the slots beyond the vector (issue 21:
    93 copies of the flagship's 22-value update). Padded with zeros, every slot beyond the values holds a zero
    that tells nobody anything, and `add_plain` can mask every slot.
    """
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    count = max(math.ceil(len(values) / slots), 1)
    padded = np.zeros(count * slots)
    padded[: len(values)] = values
    return [padded[start : start + slots] for start in range(0, count * slots, slots)]


RELEASE_BITS = 22
"""The key holder releases masked values on a 2^-22 grid (error ≤ 1.2e-7, inside the 1e-6 asked): defence in
depth, so CKKS decryption noise, which carries information about the secret key, leaves it only through a rounding."""


def release(values: np.ndarray) -> np.ndarray:
    """Masked values as the key holder hands them back: rounded to the release grid."""
    import numpy as np

    return np.round(np.asarray(values) * 2.0**RELEASE_BITS) / 2.0**RELEASE_BITS


def secret_context(params: CKKSParams) -> ts.Context:
    """A context holding the secret key (and the public key, so others can be given a public one)."""
    import tenseal as ts

    params.check_security()
    context = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree, coeff_mod_bit_sizes=params.coeff_mod_bit_sizes)
    context.global_scale = 2.0**params.scale_bits
    return context


def context_bytes(context: ts.Context, *, secret: bool, public_key: bool = True) -> bytes:
    """Serialize for a custodian: with the secret key, or public only. Never Galois or relinearization keys."""
    return bytes(context.serialize(save_public_key=public_key, save_secret_key=secret, save_galois_keys=False, save_relin_keys=False))


def load_context(data: bytes) -> ts.Context:
    import tenseal as ts

    try:
        return ts.context_from(data)
    except Exception as error:  # TenSEAL raises bare ValueError/RuntimeError from C++
        raise CKKSError(f"not a CKKS context ({type(error).__name__}: {error})") from None


def fingerprint(data: bytes) -> str:
    """SHA-256 of a serialized context, as the manifest records it."""
    return hashlib.sha256(data).hexdigest()


def encrypt(context: ts.Context, values: np.ndarray) -> list[bytes]:
    """One ciphertext per N/2 values: under the secret key when the context holds it, else under the public key.

    Secret-key (symmetric) RLWE encryption rests on the same assumption with the same parameters as
    public-key encryption, adds less fresh noise (no u·e term) and takes half the time in SEAL
    (0.7 vs 1.5 ms at N=4096; benchmarks/he.py); its ciphertexts are ordinary ones that add and
    decrypt alike. Whoever holds the secret key gains nothing from the public-key path.
    """
    return [vector.serialize() for vector in _encrypt(context, values)]


def _encrypt(context: ts.Context, values: np.ndarray) -> list[ts.CKKSVector]:
    import tenseal as ts

    encryptor = _symmetric(context) if context.is_private() else context
    return [ts.ckks_vector(encryptor, part) for part in slot_parts(values, slot_count(context))]


_SYMMETRIC_TWINS: weakref.WeakKeyDictionary[ts.Context, ts.Context] = weakref.WeakKeyDictionary()


def _symmetric(context: ts.Context) -> ts.Context:
    """The same keys and scale as `context` (which holds the secret key), encrypting with the secret key; made once."""
    import tenseal as ts

    twin = _SYMMETRIC_TWINS.get(context)
    if twin is None:
        # TenSEALContextProto's `encryption_type = 4` set to SYMMETRIC. TenSEAL fixes the encryption type when a context
        # is made; a protobuf parser keeps the last value of a repeated singular field, so appending this to a serialized
        # context turns the same keys into a secret-key encryptor. (Built here, not at import: tenseal loads when used.)
        encryption_type_field = bytes([4 << 3, int(ts.ENCRYPTION_TYPE.SYMMETRIC.value)])
        twin = load_context(context_bytes(context, secret=True, public_key=False) + encryption_type_field)
        twin.global_scale = context.global_scale
        _SYMMETRIC_TWINS[context] = twin
    return twin


def slot_count(context: ts.Context) -> int:
    """Values per ciphertext: N/2."""
    return int(context.data.seal_context().first_context_data().parms().poly_modulus_degree()) // 2


def add(context: ts.Context, updates: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Element-wise sum of several encrypted vectors; needs no key at all."""
    return [total.serialize() for total in sum_vectors(context, updates)]


def sum_vectors(context: ts.Context, updates: Sequence[Sequence[bytes | ts.CKKSVector]]) -> list[ts.CKKSVector]:
    """Serialized ciphertexts are loaded, vectors taken as they are; the first update's are summed into in place."""
    if not updates:
        raise CKKSError("nothing to add")
    lengths = {len(update) for update in updates}
    if len(lengths) != 1:
        raise CKKSError(f"encrypted updates have different numbers of ciphertexts: {sorted(lengths)}")
    totals = [load_vector(context, chunk, f"update 0, ciphertext {i}") for i, chunk in enumerate(updates[0])]
    for u, update in enumerate(updates[1:], start=1):
        for i, chunk in enumerate(update):
            try:
                totals[i] += load_vector(context, chunk, f"update {u}, ciphertext {i}")
            except ValueError as error:
                raise CKKSError(f"update {u}, ciphertext {i} cannot be added ({error}); was it encrypted under another key?") from None
    return totals


def decrypt(context: ts.Context, chunks: Sequence[bytes], length: int) -> np.ndarray:
    import numpy as np

    if not context.is_private():
        raise CKKSError("this context holds no secret key: it can add ciphertexts but not decrypt them")
    values = np.concatenate([np.asarray(load_vector(context, chunk, f"ciphertext {i}").decrypt()) for i, chunk in enumerate(chunks)])
    return values[:length]


def load_vector(context: ts.Context, chunk: bytes | ts.CKKSVector, what: str) -> ts.CKKSVector:
    import tenseal as ts

    if isinstance(chunk, ts.CKKSVector):
        return chunk
    try:
        return ts.ckks_vector_from(context, chunk)
    except Exception as error:
        raise CKKSError(f"{what} is not a valid ciphertext for this context ({len(chunk)} bytes; tampered or truncated?): {type(error).__name__}") from None


def expansion(chunks: Sequence[bytes], length: int) -> float:
    """Ciphertext bytes over the bytes of the same values as float32."""
    return sum(len(chunk) for chunk in chunks) / (4 * length)


def pack(chunks: Sequence[bytes]) -> bytes:
    """Ciphertexts as one message: each behind its 8-byte little-endian length."""
    return b"".join(len(chunk).to_bytes(8, "little") + bytes(chunk) for chunk in chunks)


def unpack(data: bytes, what: str) -> list[bytes]:
    """The ciphertexts `pack` framed; `what` names the message in the error when the framing is broken."""
    chunks, position = [], 0
    while position < len(data):
        size = int.from_bytes(data[position : position + 8], "little")
        if size == 0 or position + 8 + size > len(data):
            raise CKKSError(f"{what}: broken framing at byte {position} of {len(data)} (truncated or altered)")
        chunks.append(bytes(data[position + 8 : position + 8 + size]))
        position += 8 + size
    if not chunks:
        raise CKKSError(f"{what}: no ciphertext")
    return chunks
