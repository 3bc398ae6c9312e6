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
from workbench.contracts import Contract, Randomness, RoleNeed
from workbench.crypto import ckks
from workbench.errors import RoleError
from workbench.ledger import Protection
from workbench.parties import Role
from workbench.report.blocks import Block, Table, Text
from workbench.steps.base import Step, StepParams, register


class CKKSKeysParams(StepParams):
    custody: Literal["clients", "key_holder"] = Field(
        "clients", description="clients: the hospitals share the secret key; key_holder: a separate party holds it and no hospital does."
    )
    precision: float = Field(1e-6, gt=0, lt=1, description="Largest error wanted on a summed value; sizes scale and modulus (custody clients).")
    max_clients: int = Field(10, ge=1, le=10_000, description="Most updates summed at once, for the noise budget.")


@register
class CKKSKeys(Step[CKKSKeysParams]):
    """Generates CKKS contexts and hands them to their custodians; fingerprints go to the manifest."""

    kind = "ckks_keys"
    Params = CKKSKeysParams
    roles = (Role.HOSPITAL, Role.AGGREGATOR, Role.KEY_HOLDER)

    def contract(self) -> Contract:
        custody = self.params.custody
        needs = (RoleNeed(Role.HOSPITAL), RoleNeed(Role.AGGREGATOR, 1, 1), *((RoleNeed(Role.KEY_HOLDER, 1, 1),) if custody == "key_holder" else ()))
        return Contract(needs=needs, provides_keys=custody, randomness=Randomness.SEED_AND_SYSTEM)

    def run(self, ctx: StepContext) -> None:
        hospitals, aggregators, holders = (ctx.parties_with(role) for role in (Role.HOSPITAL, Role.AGGREGATOR, Role.KEY_HOLDER))
        if not hospitals or len(aggregators) != 1:
            raise RoleError(f"ckks_keys needs hospitals and one aggregator among its parties; got {list(ctx.parties)}")
        aggregator = aggregators[0]
        if self.params.custody == "key_holder":
            if len(holders) != 1:
                raise RoleError(f"custody key_holder needs exactly one party with role key_holder among its parties; got {holders}")
            record = self._key_holder(ctx, hospitals, aggregator, holders[0])
        else:
            record = self._clients(ctx, hospitals, aggregator)
        holder = holders[0] if self.params.custody == "key_holder" else None  # under custody clients a key holder gets nothing
        ctx.store(aggregator).put(ckks.CUSTODY_ITEM, {"custody": self.params.custody, "key_holder": holder})
        ctx.manifest.update(record)
        ctx.results["keys"] = {key: record[key] for key in ("custody", "parameters", "secret_key_holders", "generated_at")}

    def _clients(self, ctx: StepContext, hospitals: list[str], aggregator: str) -> dict[str, Any]:
        """One hospital generates; the others get the secret context; the aggregator a context with no key at all."""
        params = ckks.choose_parameters(self.params.precision, self.params.max_clients)
        dealer, context = hospitals[0], ckks.secret_context(params)
        secret, keyless = ckks.context_bytes(context, secret=True), ckks.context_bytes(context, secret=False, public_key=False)
        ctx.store(dealer).put(ckks.SECRET_ITEM, secret)
        for hospital in hospitals[1:]:  # a secure channel between data owners in practice; the ledger records that it happened
            ctx.store(hospital).put(ckks.SECRET_ITEM, ctx.send(dealer, hospital, "ckks.secret_context", secret, Protection.NONE))
        ctx.store(aggregator).put(ckks.AGGREGATOR_ITEM, ctx.send(dealer, aggregator, "ckks.public_context", keyless, Protection.NONE))
        return {
            "custody": "clients",
            "parameters": params.model_dump(),
            "generated_at": dealer,
            "secret_key_holders": hospitals,
            "secret_context_sha256": ckks.fingerprint(secret),
            "aggregator_context_sha256": ckks.fingerprint(keyless),
        }

    def _key_holder(self, ctx: StepContext, hospitals: list[str], aggregator: str, holder: str) -> dict[str, Any]:
        """The key holder generates and keeps the secret key; hospitals and aggregator get the public key only."""
        params = ckks.masking_parameters()
        context = ckks.secret_context(params)
        secret, public = ckks.context_bytes(context, secret=True), ckks.context_bytes(context, secret=False)
        ctx.store(holder).put(ckks.SECRET_ITEM, secret)
        for hospital in hospitals:
            ctx.store(hospital).put(ckks.PUBLIC_ITEM, ctx.send(holder, hospital, "ckks.public_context", public, Protection.NONE))
        ctx.store(aggregator).put(ckks.AGGREGATOR_ITEM, ctx.send(holder, aggregator, "ckks.public_context", public, Protection.NONE))
        return {
            "custody": "key_holder",
            "parameters": params.model_dump(),
            "generated_at": holder,
            "secret_key_holders": [holder],
            "secret_context_sha256": ckks.fingerprint(secret),
            "public_context_sha256": ckks.fingerprint(public),
            "mask": {"range": f"±2^{ckks.MASK_BITS}", "value_bound": ckks.VALUE_BOUND, "statistical_distance_per_value": ckks.VALUE_BOUND / 2**ckks.MASK_BITS},
        }

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        keys: dict[str, Any] = next(iter(results.values()), {})
        return f"custody {keys.get('custody')}: secret key at {', '.join(keys.get('secret_key_holders', []))}"

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        keys = results["keys"]
        p = keys["parameters"]
        if keys["custody"] == "key_holder":
            story = (
                f"Custody: key_holder. {keys['generated_at']} generated the keys and alone holds the secret key; hospitals "
                "and aggregator hold the public key. The aggregator adds the encrypted updates and a fresh random mask "
                f"(uniform in ±2^{ckks.MASK_BITS}) before the key holder decrypts, so the key holder sees only masked sums "
                f"(values clipped to ±{ckks.VALUE_BOUND:g}: statistical distance at most {ckks.VALUE_BOUND / 2**ckks.MASK_BITS:.1e} "
                "per value) and the aggregator only the unmasked aggregate. No single party that follows the protocol can "
                "read a hospital's update; the aggregator and the key holder together could, and so could an aggregator "
                "that sent the key holder one hospital's masked update instead of the sum (the key holder cannot tell "
                "them apart; docs/he.md)."
            )
        else:
            story = (
                f"Custody: clients. The secret key was generated at {keys['generated_at']} and is held by "
                f"{', '.join(keys['secret_key_holders'])}. The aggregator holds a context with no secret key: it can add "
                "ciphertexts, not read them. Any one hospital can decrypt another's update if it obtains it: the threat "
                "model trusts the hospitals with each other's updates and nobody else."
            )
        return [
            Text("Key custody", [story]),
            Table(
                "CKKS parameters (128-bit security, addition only: no Galois or relinearization keys sent)",
                ["ring degree N", "coefficient modulus bits", "scale", "values per ciphertext"],
                [[p["poly_modulus_degree"], " + ".join(map(str, [*p["data_bits"], p["special_bits"]])), f"2^{p['scale_bits']}", p["poly_modulus_degree"] // 2]],
            ),
        ]
