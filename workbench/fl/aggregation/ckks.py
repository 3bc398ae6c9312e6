"""`aggregation: ckks`: moments and updates travel CKKS-encrypted (TenSEAL), and the aggregator only adds them.

A site's update is `[w_k θ_k..., w_k]` with `w_k = n_k / n`: the weights ride inside the ciphertext, so a site
that drops out is corrected for at decryption and the aggregator never learns a site's size. Its feature
moments travel as exact fixed-point limbs (`workbench.fl.moments`). Key custody, chosen by the `ckks_keys`
step before `fl_train`, decides who decrypts:

- `clients`: every hospital holds the secret key and the aggregator's context holds no key at all. It sends
  the encrypted sums back and each site decrypts them: the aggregator never reads the model, so no strategy
  that steps from the average (FedAdam, FedAvgM, ...) can run.
- `key_holder`: a key-holder party alone holds the secret key. The aggregator masks each encrypted sum, the
  key holder decrypts only that and answers on a coarse grid, the aggregator unmasks: it ends every round
  with the average in the clear (never an update), and Flower's strategy steps from it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from workbench.errors import RoleError
from workbench.fl.aggregation.base import (
    REPLY_KINDS,
    REQUEST_KINDS,
    Aggregated,
    Aggregation,
    AggregatorEnd,
    Ask,
    AskSites,
    FinalAggregate,
    FlowerAggregate,
    NodeConfig,
    PooledMoments,
    SiteNode,
    UpdateSight,
    float_array,
    register,
)
from workbench.ledger import Protection
from workbench.models.standardize import Standardizer
from workbench.parties import MissingItemError, Role
from workbench.scratch import write_private

if TYPE_CHECKING:
    import numpy as np
    import tenseal as ts
    from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

    from workbench.context import StepContext
    from workbench.fl.plan import FLPlan

Custody = Literal["clients", "key_holder"]
CONTEXT_PATH = "ckks-context-path"
"""Node config entry: this node's CKKS context (secret under custody clients and at the key holder, public otherwise)."""
MASKED_KINDS = {REQUEST_KINDS["query"]: "ckks.masked_sum", REPLY_KINDS["query"]: "ckks.masked_decryption"}
"""Ledger kinds of the aggregator's requests to the key holder and its answers (both travel as queries)."""


@register
class CKKS(Aggregation):
    name = "ckks"
    title = "CKKS-encrypted aggregation"
    update_protection = Protection.CKKS
    exact = False
    fresh_randomness = True
    needs_keys = (Role.HOSPITAL, Role.AGGREGATOR)
    hides_updates = (
        "client-level DP has the aggregator clip each site's update to dp.clip before it noises their average, and under "
        "aggregation ckks the aggregator never reads an update (it adds ciphertexts; with custody key_holder it reads only "
        "the average). Use dp.level: sample, which runs under CKKS since each site noises its own update before encrypting "
        "it, or aggregation: none to trust the aggregator with the updates"
    )
    custody: ClassVar[Custody]
    hides_aggregate: ClassVar[str | None] = None
    """Why the aggregator cannot read the weighted average of the updates under this custody; None if it can."""
    sees: ClassVar[str]
    """What the aggregator saw and did not, for the report."""

    @classmethod
    def bind(cls, plan: FLPlan) -> Aggregation:
        return (KeyHolder if plan.key_holder else Clients)(plan)

    @classmethod
    def vary(cls, raw: dict[str, Any], custody: Custody | None = None, holder: str | None = None, **unknown: Any) -> None:
        """Keys of `custody` (default clients) before the first fl_train step of a raw recipe, and a key-holder party
        (`holder`, default `key_holder`) if custody needs one and the recipe has none of that name."""
        if unknown:  # the base takes any option, so that each kind names its own; these are no option of this kind
            raise TypeError(f"{cls.__name__}.vary() got unexpected option(s): {', '.join(unknown)}")
        custody, holder = custody or Clients.custody, holder or Role.KEY_HOLDER.value
        steps = raw["steps"]
        steps.insert(next(i for i, step in enumerate(steps) if step["kind"] == "fl_train"), {"kind": "ckks_keys", "params": {"custody": custody}})
        if custody == KeyHolder.custody and holder not in raw["parties"]:
            raw["parties"][holder] = {"role": Role.KEY_HOLDER.value, "description": "Holds the only secret key; decrypts only masked sums."}

    # --- the coordinator ------------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, ctx: StepContext, plan: FLPlan) -> Aggregation:
        from workbench.crypto import ckks

        store = ctx.store(plan.server)
        if not store.has(ckks.AGGREGATOR_ITEM):
            raise MissingItemError(f"aggregation ckks needs keys, and {plan.server!r} holds none: add a `ckks_keys` step before fl_train")
        holder = store.get(ckks.CUSTODY_ITEM)["key_holder"]
        if holder is not None and holder not in ctx.parties:
            raise RoleError(f"custody key_holder: {holder!r} must be among fl_train's parties to decrypt masked aggregates")
        return super().prepare(ctx, plan.model_copy(update={"key_holder": holder}))

    @classmethod
    def hiding_custodies(cls) -> dict[str | None, str]:
        return {custody.custody: custody.hides_aggregate for custody in (Clients, KeyHolder) if custody.hides_aggregate}

    @abstractmethod
    def _site_key(self) -> str:
        """The store item of the context a site encrypts with."""

    def site_config(self, ctx: StepContext, site: str, private: Path) -> dict[str, str]:
        return {CONTEXT_PATH: str(write_private(private / site / "ckks-context", ctx.store(site).get(self._site_key())))}

    def server_material(self, ctx: StepContext) -> bytes | None:
        from workbench.crypto import ckks

        return bytes(ctx.store(self.plan.server).get(ckks.AGGREGATOR_ITEM))

    def summary(self, ctx: StepContext) -> dict[str, Any]:
        return {**super().summary(ctx), "ciphertext_expansion": self._expansion(ctx), "custody": self.custody}

    def _expansion(self, ctx: StepContext) -> float:
        """Bytes of the update messages the aggregator received over float32 bytes of the values they carry."""
        updates = [m for m in ctx.ledger.messages if m.step == ctx.step and m.kind == REPLY_KINDS["train"] and m.receiver == self.plan.server]
        return sum(m.nbytes for m in updates) / (len(updates) * 4 * (self.plan.param_count() + 1))

    @classmethod
    def describe(cls, server: str, summary: Mapping[str, Any]) -> str:
        sees = next(custody for custody in (Clients, KeyHolder) if custody.custody == summary["custody"]).sees
        return (
            f"Model updates travelled CKKS-encrypted (protection: {cls.update_protection.value}), and so did each site's feature "
            f"counts, sums and sums of squares for standardization (as exact fixed-point sums): the aggregator '{server}' "
            f"added ciphertexts with a context holding no secret key; {sees}. "
            f"Update messages were {summary['ciphertext_expansion']:.2f}x the float32 bytes of their values. "
            "Still in the clear: each site's training and held-out losses and AUCs, and its number of held-out rows."
        )

    # --- the sites ------------------------------------------------------------------------------------------------
    def site_moments(self, site: SiteNode, count: float, sums: np.ndarray, squares: np.ndarray) -> RecordDict:
        from workbench.fl import moments

        plan = self.plan
        return _ciphertexts(
            moments.encrypt(_context(str(site.config[CONTEXT_PATH])), site.party, plan.features.names(), len(plan.parties), count, sums, squares)
        )

    def site_model(self, node: NodeConfig, arrays: ArrayRecord) -> np.ndarray:
        """The initial model comes in the clear; under custody clients every later one is the encrypted weighted sum."""
        from workbench.fl.encrypted import from_arrays, is_encrypted

        if not is_encrypted(arrays):
            return super().site_model(node, arrays)
        return _decrypted_model(str(node[CONTEXT_PATH]), tuple(from_arrays(arrays)), self.plan.param_count())

    def site_update(self, site: SiteNode, params: np.ndarray, rows: int, total_rows: float, metrics: dict[str, float]) -> RecordDict:
        import numpy as np
        from flwr.app import MetricRecord

        from workbench.crypto import ckks

        weight = rows / total_rows
        content = _ciphertexts(ckks.encrypt(_context(str(site.config[CONTEXT_PATH])), np.append(weight * self._bounded(params), weight)))
        content["metrics"] = MetricRecord(dict(metrics))  # as Flower's dict of metric values (dicts are invariant)
        return content

    def _bounded(self, params: np.ndarray) -> np.ndarray:
        return params

    @classmethod
    def serve_helper(cls, node: NodeConfig, request: ConfigRecord) -> dict[str, Any]:
        """The key holder's only service: decrypt what the aggregator sends. By protocol that is a masked sum."""
        if request.get("op") != "decrypt":
            return {}
        from flwr.app import ArrayRecord

        from workbench.crypto import ckks
        from workbench.crypto import secure_sum as ss
        from workbench.fl import moments

        # Flower types a config value as any of its kinds; the aggregator's request holds byte chunks and counts.
        secret, chunks, count = _context(str(node[CONTEXT_PATH])), list(cast("list[bytes]", request["ckks"])), int(cast(int, request["count"]))
        if "parties" in request:  # exact moments: round here, so the aggregator gets integers and no decryption noise
            values = ss.decrypt_masked(secret, chunks, count, moments.CODEC, int(cast(int, request["parties"])))
        else:
            values = ckks.release(ckks.decrypt(secret, chunks, count))
        return {"masked": ArrayRecord({"values": float_array(values)})}

    # --- the aggregator -------------------------------------------------------------------------------------------
    def open(self, material: bytes | None, ask: Ask, ask_sites: AskSites) -> AggregatorEnd:
        from workbench.crypto import ckks
        from workbench.fl.errors import FederationError

        if material is None:
            raise FederationError("aggregation ckks needs the aggregator's public CKKS context; add a ckks_keys step before fl_train")
        context = ckks.load_context(material)
        if context.is_private():
            raise FederationError("the aggregator was handed a context with the secret key; no custody allows it")
        return AggregatorEnd(context, ask, ask_sites)

    def _sum(self, end: AggregatorEnd, replies: list[Message]) -> list[bytes]:
        from workbench.crypto import ckks

        return ckks.add(end.key, [list(reply.content["encrypted"]["ckks"]) for reply in replies])  # type: ignore[arg-type]

    def pool_moments(self, end: AggregatorEnd, replies: list[Message]) -> PooledMoments:
        return self._pooled(end, self._sum(end, replies), len(replies))

    @abstractmethod
    def _pooled(self, end: AggregatorEnd, total: list[bytes], sites: int) -> PooledMoments:
        """The encrypted total of the sites' moments, as the aggregator may end with it."""

    def combine(self, end: AggregatorEnd, replies: list[Message], flower: FlowerAggregate) -> Aggregated:
        return self._combined(end, self._sum(end, replies), flower)

    @abstractmethod
    def _combined(self, end: AggregatorEnd, summed: list[bytes], flower: FlowerAggregate) -> Aggregated:
        """The encrypted sum of the updates, as the next global model."""

    def label(self, kind: str, content: RecordDict) -> tuple[str, str]:
        """Ciphertexts make a message `ckks`; a masked decryption is `masked`; requests to and answers from the key holder
        have kinds of their own."""
        from workbench.fl.encrypted import is_encrypted

        arrays, configs = content.array_records, content.config_records.values()
        if "masked" in arrays or any(record.get("op") == "decrypt" for record in configs):
            kind = MASKED_KINDS.get(kind, kind)
        if any(is_encrypted(record) for record in arrays.values()) or any("ckks" in record for record in configs):
            return kind, Protection.CKKS.value
        return kind, (Protection.MASKED if "masked" in arrays else Protection.NONE).value


class Clients(CKKS):
    """The hospitals hold the secret key; the aggregator adds and broadcasts ciphertexts it cannot read."""

    custody = "clients"
    reads_updates = UpdateSight.NOTHING
    sees = (
        "the aggregator never saw a site's update or statistics, the aggregate model or the pooled feature "
        "means and deviations (the sites decrypted those themselves)"
    )

    hides_aggregate: ClassVar[str] = (
        "under aggregation ckks with custody clients it holds only the encrypted sum, which the hospitals alone can decrypt. "
        "Use strategy fedavg or fedprox, or keys under custody key_holder: the key holder decrypts only the masked sum, so "
        "the aggregator reads the average but never a site's update"
    )

    def _site_key(self) -> str:
        from workbench.crypto import ckks

        return ckks.SECRET_ITEM

    def final_model(self, ctx: StepContext, outcome: FinalAggregate, site: str) -> tuple[Standardizer, np.ndarray]:
        """The aggregator can read neither the final aggregate nor the pooled moments: a site decrypts them."""
        from workbench.crypto import ckks
        from workbench.fl import moments

        plan = self.plan
        secret = ckks.load_context(ctx.store(site).get(ckks.SECRET_ITEM))
        standardizer, _ = moments.decrypt(secret, outcome.encrypted_moments, len(plan.features.names()), len(plan.parties))
        values = ckks.decrypt(secret, outcome.encrypted_params, plan.param_count() + 1)
        return standardizer, values[:-1] / values[-1]

    def site_standardizer(self, node: NodeConfig, config: ConfigRecord) -> tuple[Standardizer, float]:
        """Every message carries the encrypted pooled moments; a site decrypts them once per process (the same ciphertext
        comes every round)."""
        from workbench.fl import moments

        chunks = tuple(config[moments.CONFIG_KEY])  # type: ignore[arg-type]
        return _decrypted_moments(str(node[CONTEXT_PATH]), chunks, len(self.plan.features.names()), len(self.plan.parties))

    def _pooled(self, end: AggregatorEnd, total: list[bytes], sites: int) -> PooledMoments:
        return PooledMoments(None, None, total)

    def round_config(self, pooled: PooledMoments) -> dict[str, Any]:
        from workbench.fl import moments

        return {moments.CONFIG_KEY: pooled.encrypted}

    def _combined(self, end: AggregatorEnd, summed: list[bytes], flower: FlowerAggregate) -> Aggregated:
        from workbench.fl.encrypted import to_arrays

        return to_arrays(summed), None  # [sum w_k theta_k..., sum w_k], for the sites to decrypt

    def final(self, arrays: ArrayRecord, pooled: PooledMoments) -> FinalAggregate:
        from workbench.fl.encrypted import from_arrays

        return FinalAggregate([], [], [], encrypted_params=from_arrays(arrays), encrypted_moments=pooled.encrypted)


class KeyHolder(CKKS):
    """A key holder alone holds the secret key and decrypts only sums the aggregator masked."""

    custody = "key_holder"
    reads_updates = UpdateSight.AVERAGE
    sees = (
        "the key holder decrypted only masked sums, so the aggregator saw the aggregate model and the pooled "
        "feature means and deviations, but no site's update or statistics"
    )

    @property
    def holder(self) -> str:
        assert self.plan.key_holder is not None
        return self.plan.key_holder

    def _site_key(self) -> str:
        from workbench.crypto import ckks

        return ckks.PUBLIC_ITEM

    def helper_configs(self, ctx: StepContext, private: Path) -> list[dict[str, str]]:
        """The key holder runs a node of its own that holds no data and only decrypts masked sums."""
        from workbench.crypto import ckks

        path = write_private(private / self.holder / "ckks-context", ctx.store(self.holder).get(ckks.SECRET_ITEM))
        return [{"party": self.holder, "role": Role.KEY_HOLDER.value, "aggregation": self.name, CONTEXT_PATH: str(path)}]

    def helpers(self) -> dict[str, str]:
        return {self.holder: "the key holder"}

    def _bounded(self, params: np.ndarray) -> np.ndarray:
        """The key holder's view of a masked sum is bounded only for bounded values."""
        import numpy as np

        from workbench.crypto import ckks

        bounded: np.ndarray = np.clip(params, -ckks.VALUE_BOUND, ckks.VALUE_BOUND)
        return bounded

    def _pooled(self, end: AggregatorEnd, total: list[bytes], sites: int) -> PooledMoments:
        import numpy as np

        from workbench.crypto import secure_sum as ss
        from workbench.fl import moments

        features = len(self.plan.features.names())
        masked = ss.mask(end.key, total, 1 + 2 * features, moments.CODEC, sites)
        seen = self._decrypted(end, {"op": "decrypt", "ckks": masked.chunks, "count": len(masked.mask), "parties": sites}, "feature moments")
        return PooledMoments(*moments.standardizer(ss.unmask(seen.astype(np.int64), masked, moments.CODEC, sites), features))

    def round_config(self, pooled: PooledMoments) -> dict[str, Any]:
        assert pooled.rows is not None
        return {**super().round_config(pooled), "total-rows": float(pooled.rows)}  # sites weight their updates by n_k / n

    def _combined(self, end: AggregatorEnd, summed: list[bytes], flower: FlowerAggregate) -> Aggregated:
        from workbench.crypto import ckks

        count = self.plan.param_count() + 1
        masked, mask = ckks.mask(end.key, summed, count)
        aggregate = self._decrypted(end, {"op": "decrypt", "ckks": masked, "count": count}, "aggregate") - mask  # [sum w_k theta_k..., sum w_k]
        return flower.step_from(aggregate[:-1] / aggregate[-1])

    def _decrypted(self, end: AggregatorEnd, request: dict[str, Any], what: str) -> np.ndarray:
        """Send a masked sum to the key holder's node; what it decrypted is still masked."""
        answer = end.ask(self.holder, request, f"the key holder {self.holder!r} did not decrypt the masked {what}")
        return answer["masked"]["values"].numpy()  # type: ignore[union-attr]


def _ciphertexts(chunks: list[bytes]) -> RecordDict:
    from flwr.app import ConfigRecord, RecordDict

    return RecordDict({"encrypted": ConfigRecord({"ckks": chunks})})


@lru_cache(maxsize=8)
def _context(path: str) -> ts.Context:
    """This node's CKKS context, read once per process."""
    from workbench.crypto import ckks

    return ckks.load_context(Path(path).read_bytes())


@lru_cache(maxsize=4)
def _decrypted_moments(context_path: str, chunks: tuple[bytes, ...], features: int, parties: int) -> tuple[Standardizer, float]:
    from workbench.fl import moments

    return moments.decrypt(_context(context_path), chunks, features, parties)


@lru_cache(maxsize=4)
def _decrypted_model(context_path: str, chunks: tuple[bytes, ...], count: int) -> np.ndarray:
    """Decrypt an aggregate once: a round's evaluation and the next round's training carry the same one."""
    from workbench.crypto import ckks

    values = ckks.decrypt(_context(context_path), chunks, count + 1)
    average: np.ndarray = values[:count] / values[count]  # the weighted sums, over the sum of the weights
    return average
