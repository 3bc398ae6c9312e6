"""Exact integer totals over a step's sites, the coordinator reading only the total: secagg's rounds in one process.

A step that needs a sum across sites and no keys (pooled evaluation's histograms) runs
the same semi-honest protocol as `aggregation: secagg` (`crypto/secagg.py`), with the
coordinator as its server and every message through the ledger as the bytes it would
be on a wire. Values are integers, so the quantization step is 1 (`EXACT`) and the total
is exact. All sites answer here (one process, nobody drops out); the protocol's dropout
recovery is exercised where sites can drop, in federated training.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from workbench.crypto import secagg as sa
from workbench.ledger import Protection
from workbench.parties import COORDINATOR

if TYPE_CHECKING:
    import numpy as np

    from workbench.context import StepContext

EXACT = sa.SecAggParams(clip_range=2.0**50, quantization_bits=51, modulus_bits=64)
"""Step 1 over ±2^50: integers pass unchanged, and a total over up to 2^12 sites stays below the 2^64 modulus."""
LARGEST = int(EXACT.clip_range)


def masked_total(ctx: StepContext, vectors: Mapping[str, np.ndarray], kind: str) -> np.ndarray:
    """Σ of the sites' int64 `vectors` (same length, each value within ±2^50), as the coordinator unmasks it.

    Ledger kinds are `{kind}.keys`, `.key-list`, `.shares`, `.masked`, `.unmask` and `.unmask-shares`.
    """
    import numpy as np

    sites = sorted(vectors)
    for site in sites:
        if np.abs(vectors[site]).max(initial=0) > LARGEST:
            raise sa.SecAggError(f"site {site!r}: a {kind} value exceeds ±2^50, which a masked total cannot carry exactly")
    states, adverts = {}, []
    for site in sites:
        states[site], advert = sa.advertise_keys(site)
        received = ctx.send(site, COORDINATOR, f"{kind}.keys", advert.cipher_public + advert.mask_public, Protection.NONE)
        adverts.append(sa.KeyAdvertisement(site, received[:32], received[32:]))
    key_list = b"".join(a.site.encode() + b"\0" + a.cipher_public + a.mask_public for a in adverts)
    sealed = []
    for site in sites:
        ctx.send(COORDINATOR, site, f"{kind}.key-list", key_list, Protection.NONE)
        states[site], messages = sa.share_keys(states[site], EXACT, adverts)
        for message in messages:
            sealed.append(sa.EncryptedShares(site, message.recipient, ctx.send(site, COORDINATOR, f"{kind}.shares", message.ciphertext, Protection.ENCRYPTED)))
    u2, inbox = sa.relay(sealed)
    inputs = []
    for site in sites:
        shares = [
            sa.EncryptedShares(m.sender, site, ctx.send(COORDINATOR, site, f"{kind}.shares", m.ciphertext, Protection.ENCRYPTED)) for m in inbox.get(site, [])
        ]
        states[site], masked = sa.masked_input(states[site], shares, u2, np.asarray(vectors[site], dtype=np.int64))
        received = ctx.send(site, COORDINATOR, f"{kind}.masked", masked.vector.tobytes(), Protection.MASKED)
        inputs.append(sa.MaskedInput(site, np.frombuffer(received, dtype=masked.vector.dtype).copy()))
    request = sa.unmask_request(u2, inputs)
    request_bytes = json.dumps({"survivors": request.survivors, "dropped": request.dropped}).encode()
    responses = []
    for site in sites:
        ctx.send(COORDINATOR, site, f"{kind}.unmask", request_bytes, Protection.NONE)
        states[site], response = sa.unmask(states[site], request)
        answer = json.dumps(
            {"seeds": {v: s.hex() for v, s in response.seed_shares.items()}, "keys": {v: k.hex() for v, k in response.key_shares.items()}}
        ).encode()
        opened = json.loads(ctx.send(site, COORDINATOR, f"{kind}.unmask-shares", answer, Protection.NONE))
        responses.append(
            sa.UnmaskResponse(site, {v: bytes.fromhex(s) for v, s in opened["seeds"].items()}, {v: bytes.fromhex(k) for v, k in opened["keys"].items()})
        )
    total: np.ndarray = sa.unmasked_sum(EXACT, adverts, u2, inputs, responses)
    return total
