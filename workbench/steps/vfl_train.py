"""Hybrid vertical federated logistic regression: the vendor's vitals stay at the vendor, the labels at each hospital.

Runs after `psi_link` with `reveal: both` (and `keep_unmatched: true`, so that unmatched patients train the EHR
block) and after `split` on the linked table. The protocol, what each message carries and who learns what are in
`workbench/vfl/protocol.py` and docs/vfl.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from workbench.context import StepContext
from workbench.contracts import Columns, Contract, Randomness, RoleNeed, Technique
from workbench.data.link_columns import LINK_ID, LINK_PARTY
from workbench.data.splits import SPLIT_COLUMN, split_part
from workbench.errors import RoleError
from workbench.ledger import Protection
from workbench.models.features import FeatureError, FeatureSpec, TableRef, design_matrix, label_vector
from workbench.models.model import ModelSpec
from workbench.parties import Role
from workbench.steps.base import Step, StepParams, register, total

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from workbench.models.standardize import Standardizer
    from workbench.vfl.protocol import GuestRows, Parties, Trained

ROW = "__vfl_row__"


class VflProtection(StrEnum):
    """How the row-level vectors travel: under the key holder's CKKS key, or in the clear (the baseline)."""

    CKKS = "ckks"
    NONE = "none"


TITLES = {VflProtection.CKKS: "vertical training under CKKS", VflProtection.NONE: "vertical training in the clear"}


class VflTrainParams(StepParams):
    table: str = Field("linked", description="At each hospital: its patients, with psi_link's link_id (null when unmatched), the label and the split.")
    label: str = Field(description="Binary outcome column, at the hospitals only.")
    features: FeatureSpec = Field(description="The hospitals' EHR columns (the same at every hospital): the block the hospitals federate.")
    vendor_table: str = Field("linked", description="At the data provider: its rows linked with each hospital (psi_link's link_party and link_id).")
    vendor_features: FeatureSpec = Field(description="The vendor's numeric columns: the block that stays at the vendor.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="Only the logistic family: its l2 applies to both blocks.")
    protection: VflProtection = Field(
        VflProtection.CKKS, description="ckks: every row-level vector under the key holder's CKKS key; none: in the clear, for teaching and as the baseline."
    )
    id_column: str = Field(
        "patient_id", description="At each hospital: its own record id, by which it keeps the joint scores of its held-out patients for evaluate."
    )
    save_as: str = Field("vertical", description="Name under which each hospital keeps the model (its EHR block and its held-out scores), for evaluate.")
    iterations: int = Field(500, ge=1, le=100_000, description="Most full-batch gradient steps.")
    tolerance: float = Field(
        1e-6, gt=0.0, description="Stop once the gradient's norm is at most this: within tolerance / l2 of the optimum on every coefficient."
    )

    @model_validator(mode="after")
    def _logistic_only(self) -> VflTrainParams:
        if self.model.family != "logistic":
            raise ValueError(f"model.family {self.model.family!r}: vfl_train trains the logistic family only (its blocks add up to one logit)")
        if self.vendor_features.categorical:
            raise ValueError("vendor_features: declare numeric columns only (one-hot columns would be the vendor's to encode; not built)")
        return self

    def reads(self) -> tuple[Columns, ...]:
        return (
            Columns(self.table, tuple(self.features.columns()), where=("features",)),
            Columns(self.table, (self.label,), where=("label",)),
            Columns(self.table, (SPLIT_COLUMN, LINK_ID), where=("table",)),
            Columns(self.table, (self.id_column,), where=("id_column",)),
            Columns(self.vendor_table, tuple(self.vendor_features.columns()), Role.DATA_PROVIDER, ("vendor_features",), ("vendor_table",)),
            Columns(self.vendor_table, (LINK_PARTY, LINK_ID), Role.DATA_PROVIDER, ("vendor_table",), ("vendor_table",)),
        )


@register
class VflTrain(Step[VflTrainParams]):
    """Hybrid vertical logistic regression: EHR block federated over hospitals, vitals block at the vendor (FATE-style arbiter)."""

    kind = "vfl_train"
    Params = VflTrainParams
    roles = (Role.HOSPITAL, Role.DATA_PROVIDER, Role.AGGREGATOR, Role.KEY_HOLDER)

    def default_parties(self, roles: Any) -> list[str]:
        wanted = self.roles if self.params.protection is VflProtection.CKKS else self.roles[:-1]
        return [party for party, role in roles.items() if role in wanted]

    def contract(self) -> Contract:
        needs = [RoleNeed(Role.HOSPITAL), RoleNeed(Role.DATA_PROVIDER, 1, 1), RoleNeed(Role.AGGREGATOR, 1, 1)]
        if self.params.protection is VflProtection.CKKS:
            needs.append(RoleNeed(Role.KEY_HOLDER, 1, 1))
        protection = Protection.CKKS if self.params.protection is VflProtection.CKKS else Protection.NONE
        return Contract(
            needs=tuple(needs),
            reads=self.params.reads(),
            saves_models=(self.params.save_as,),
            technique=Technique("federated training", f"vertical, {self.params.protection}", TITLES[self.params.protection], protection),
            randomness=Randomness.SEED_AND_SYSTEM if self.params.protection is VflProtection.CKKS else Randomness.NONE,
        )

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        hospitals = {party: summary for party, summary in results.items() if "matched_rows" in summary}
        trained: dict[str, Any] = next((summary for summary in results.values() if "iterations" in summary), {})
        return (
            f"{trained.get('iterations', '?')} iterations over {total(hospitals, 'train_rows')} rows at {len(hospitals)} hospitals, "
            f"{total(hospitals, 'matched_rows')} with the vendor's vitals ({trained.get('protection', '?')})"
        )

    def run(self, ctx: StepContext) -> None:
        from workbench.vfl.protocol import alignment_digest, train

        p = self.params
        parties = self._parties(ctx)
        hospitals = list(parties.hospitals)
        frames = {h: self._linked(ctx, h) for h in hospitals}
        scaling = self._ehr_scaling(ctx, parties, frames)
        guests, link_ids, record_ids = {}, {}, {}
        for hospital in hospitals:
            guests[hospital], link_ids[hospital], record_ids[hospital] = self._guest_rows(hospital, frames[hospital], scaling)
        host_blocks = self._host_blocks(ctx, parties.vendor, hospitals)
        for hospital in hospitals:
            digest = ctx.send(hospital, parties.vendor, "vfl.alignment", alignment_digest(link_ids[hospital]).encode(), Protection.NONE)
            if digest.decode() != alignment_digest(host_blocks[hospital][0]):
                raise FeatureError(
                    f"{parties.vendor} table {p.vendor_table!r} and {hospital} table {p.table!r} hold different link ids for {hospital} "
                    f"({len(host_blocks[hospital][0])} and {len(link_ids[hospital])}): run psi_link with reveal both into both tables just before"
                )
        trained = train(
            ctx.send,
            parties,
            guests,
            {h: block for h, (_, block) in host_blocks.items()},
            l2=p.model.l2,
            iterations=p.iterations,
            tolerance=p.tolerance,
            on_iteration=lambda done, norm: ctx.progress(done, p.iterations, f"gradient {norm:.1e}"),
        )
        self._keep(ctx, parties, trained, scaling, guests, record_ids)
        for hospital in hospitals:
            rows = guests[hospital]
            ctx.publish(hospital, {"train_rows": rows.train_rows, "matched_rows": len(rows.matched), "matched_train_rows": int(rows.matched_train.sum())})
        ctx.publish(parties.vendor, {"aligned_rows": sum(len(ids) for ids, _ in host_blocks.values()), "features": len(p.vendor_features.names())})
        ctx.publish(
            parties.aggregator,
            {"iterations": trained.iterations, "gradient_norm": trained.gradient_norm, "step_size": trained.step_size, "protection": p.protection},
        )

    def _parties(self, ctx: StepContext) -> Parties:
        from workbench.vfl.protocol import Parties

        hospitals, vendors, aggregators = (ctx.parties_with(role) for role in (Role.HOSPITAL, Role.DATA_PROVIDER, Role.AGGREGATOR))
        holders = ctx.parties_with(Role.KEY_HOLDER) if self.params.protection is VflProtection.CKKS else [None]
        if not hospitals or len(vendors) != 1 or len(aggregators) != 1 or len(holders) != 1:
            needed = "one data provider, one aggregator" + (", one key holder" if self.params.protection is VflProtection.CKKS else "")
            raise RoleError(f"vfl_train needs at least one hospital, {needed} among its parties; got {list(ctx.parties)}")
        return Parties(tuple(hospitals), vendors[0], aggregators[0], holders[0])

    def _linked(self, ctx: StepContext, hospital: str) -> pl.DataFrame:
        import polars as pl

        frame = ctx.store(hospital).table(self.params.table)
        if LINK_ID not in frame.columns:
            raise FeatureError(f"{TableRef(hospital, self.params.table)}: no {LINK_ID!r} column; link it first with psi_link, reveal: both")
        return frame.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))

    def _ehr_scaling(self, ctx: StepContext, parties: Parties, frames: dict[str, pl.DataFrame]) -> Standardizer:
        """The EHR block's standardization, the same at every hospital: public bounds, or the hospitals' pooled moments."""
        import numpy as np

        from workbench.models.standardize import Standardizer, moments
        from workbench.vfl.cipher import from_bytes, to_bytes

        p = self.params
        if p.features.public_scaling:
            return Standardizer.from_bounds(p.features)
        pooled = None
        for hospital, frame in frames.items():
            where = TableRef(hospital, p.table)
            count, sums, squares = moments(design_matrix(split_part(frame, where, test=False), p.features, where))
            sent = from_bytes(ctx.send(hospital, parties.aggregator, "vfl.moments", to_bytes(np.concatenate([[count], sums, squares])), Protection.NONE))
            pooled = sent if pooled is None else pooled + sent
        assert pooled is not None
        width = (len(pooled) - 1) // 2
        scaling = Standardizer.from_moments(pooled[0], pooled[1 : 1 + width], pooled[1 + width :])
        for hospital in frames:
            ctx.send(parties.aggregator, hospital, "vfl.standardizer", to_bytes(np.concatenate([scaling.center, scaling.scale])), Protection.NONE)
        return scaling

    def _guest_rows(self, hospital: str, frame: pl.DataFrame, scaling: Standardizer) -> tuple[GuestRows, np.ndarray, list[str]]:
        """The hospital's rows for the protocol, and its matched rows' link ids and record ids (in the same order)."""
        import numpy as np
        import polars as pl

        from workbench.vfl.protocol import GuestRows

        p, where = self.params, TableRef(hospital, self.params.table)
        train_rows = set(split_part(frame, where, test=False).get_column(ROW).to_list())
        matched = frame.filter(pl.col(LINK_ID).is_not_null()).sort(LINK_ID)
        unmatched = frame.filter(pl.col(LINK_ID).is_null() & pl.col(ROW).is_in(list(train_rows)))
        if matched.is_empty():
            raise FeatureError(f"{where}: no row has a {LINK_ID}; {hospital} shares no patient with the vendor, so it cannot train the vertical model")

        def encoded(rows: pl.DataFrame) -> np.ndarray:
            standardized = scaling.apply(design_matrix(rows, p.features, where))
            return np.column_stack([standardized, np.ones(len(rows))])

        rows = GuestRows(
            matched=encoded(matched),
            matched_labels=label_vector(matched, p.label, where),
            matched_train=np.array([row in train_rows for row in matched.get_column(ROW).to_list()], dtype=bool),
            unmatched=encoded(unmatched),
            unmatched_labels=label_vector(unmatched, p.label, where),
        )
        return rows, matched.get_column(LINK_ID).to_numpy(), [str(value) for value in matched.get_column(p.id_column).to_list()]

    def _host_blocks(self, ctx: StepContext, vendor: str, hospitals: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Hospital -> (link ids, the vendor's standardized rows linked with it, in link-id order), standardized on all of them."""
        import numpy as np
        import polars as pl

        from workbench.models.standardize import Standardizer

        p, where = self.params, TableRef(vendor, self.params.vendor_table)
        frame = ctx.store(vendor).table(p.vendor_table)
        missing = [column for column in (LINK_PARTY, LINK_ID) if column not in frame.columns]
        if missing:
            raise FeatureError(f"{where}: no {' or '.join(missing)} column; link it first with psi_link, reveal: both, into this table")
        parts = {h: frame.filter(pl.col(LINK_PARTY) == h).sort(LINK_ID) for h in hospitals}
        raw = {h: design_matrix(part, p.vendor_features, where) for h, part in parts.items()}
        scaling = Standardizer.for_features(p.vendor_features, np.vstack(list(raw.values())))
        return {h: (parts[h].get_column(LINK_ID).to_numpy(), scaling.apply(raw[h])) for h in hospitals}

    def _keep(
        self, ctx: StepContext, parties: Parties, trained: Trained, scaling: Standardizer, guests: dict[str, GuestRows], record_ids: dict[str, list[str]]
    ) -> None:
        """Each block stays where it was trained: at every hospital the EHR block with its held-out patients' joint scores
        (`VerticalModel`, what evaluate reads), the vitals block at the vendor."""
        from workbench.models import model_key
        from workbench.vfl.model import VerticalModel

        for hospital in parties.hospitals:
            ids, held_out = record_ids[hospital], ~guests[hospital].matched_train
            scored = dict(zip([i for i, out in zip(ids, held_out) if out], trained.held_out_logits[hospital].tolist(), strict=True))
            model = VerticalModel(ctx.step, self.params.features, scaling, trained.guest_weights.copy(), self.params.id_column, scored, frozenset(ids))
            ctx.store(hospital).put(model_key(self.params.save_as), model)
        ctx.store(parties.vendor).put(f"vfl/{ctx.step}/vendor_block", trained.host_weights.copy())
