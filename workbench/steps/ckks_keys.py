"""Provision CKKS keys for encrypted aggregation, with custody an explicit choice.

Custody `clients` (the common design, as in NVIDIA FLARE): one hospital
generates the key pair and shares the secret context with the other
hospitals; the aggregator receives a context with no key at all, enough to
add ciphertexts and nothing more. Fingerprints of every context handed out go
to the manifest, so a run records exactly which keys it used.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from workbench.context import StepContext
from workbench.crypto import ckks
from workbench.ledger import Protection
from workbench.parties import Role
from workbench.report.blocks import Block, Table, Text
from workbench.steps.base import Step, StepParams, register


class CKKSKeysParams(StepParams):
    custody: Literal["clients"] = Field("clients", description="Who holds the secret key: the data owners (clients).")
    precision: float = Field(1e-6, gt=0, lt=1, description="Largest error wanted on a summed value; sizes scale and modulus.")
    max_clients: int = Field(10, ge=1, description="Most updates summed at once, for the noise budget.")


@register
class CKKSKeys(Step[CKKSKeysParams]):
    """Generates CKKS contexts and hands them to their custodians; fingerprints go to the manifest."""

    kind = "ckks_keys"
    Params = CKKSKeysParams
    roles = (Role.HOSPITAL, Role.AGGREGATOR)

    def run(self, ctx: StepContext) -> None:
        hospitals = [p for p in ctx.parties if ctx.roles[p] is Role.HOSPITAL]
        aggregators = [p for p in ctx.parties if ctx.roles[p] is Role.AGGREGATOR]
        if not hospitals or len(aggregators) != 1:
            raise ValueError(f"ckks_keys needs hospitals and one aggregator among its parties; got {list(ctx.parties)}")
        params = ckks.choose_parameters(self.params.precision, self.params.max_clients)
        dealer = hospitals[0]
        context = ckks.secret_context(params)
        secret = ckks.context_bytes(context, secret=True)
        keyless = ckks.context_bytes(context, secret=False, public_key=False)
        ctx.store(dealer).put(ckks.SECRET_ITEM, secret)
        for hospital in hospitals[1:]:  # a secure channel between data owners in practice; the ledger records that it happened
            ctx.store(hospital).put(ckks.SECRET_ITEM, ctx.send(dealer, hospital, "ckks.secret_context", secret, Protection.NONE))
        ctx.store(aggregators[0]).put(ckks.AGGREGATOR_ITEM, ctx.send(dealer, aggregators[0], "ckks.public_context", keyless, Protection.NONE))
        ctx.manifest.update({
            "custody": self.params.custody,
            "parameters": params.model_dump(),
            "secret_context_sha256": ckks.fingerprint(secret),
            "aggregator_context_sha256": ckks.fingerprint(keyless),
            "secret_key_holders": hospitals,
        })
        ctx.results["keys"] = {"custody": self.params.custody, "parameters": params.model_dump(), "dealer": dealer,
                               "secret_key_holders": hospitals, "aggregator_holds_secret_key": False}

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        keys = results["keys"]
        p = keys["parameters"]
        return [
            Text("Key custody", [
                f"Custody: {keys['custody']}. The secret key was generated at {keys['dealer']} and is held by "
                f"{', '.join(keys['secret_key_holders'])}. The aggregator holds a context with no secret key: it can add "
                "ciphertexts, not read them. Any one hospital can decrypt another's update if it obtains it: the threat "
                "model trusts the hospitals with each other's updates and nobody else.",
            ]),
            Table("CKKS parameters (128-bit security, addition only: no Galois or relinearization keys sent)",
                  ["ring degree N", "data prime bits", "special prime bits", "scale", "values per ciphertext"],
                  [[p["poly_modulus_degree"], p["data_bits"], p["special_bits"], f"2^{p['scale_bits']}", p["poly_modulus_degree"] // 2]]),
        ]
