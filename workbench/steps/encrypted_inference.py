"""A site outside the consortium scores its patients with a trained model: its features cross only encrypted, and the
model's weights never leave the party that holds them.

The querier (a clinic) encrypts its rows under its own CKKS key and sends them with its public context; the model's
holder (a hospital that saved the model) computes the logits under encryption with its plaintext weights, within a
budget of rows per querier it keeps across steps, and returns them re-randomized and flooded; the querier decrypts and
applies the sigmoid itself. Logistic models only: their logit is linear in the inputs, so plaintext products and
ciphertext sums suffice, without relinearization or rotation keys (`crypto/ckks_inference.py`; docs/inference.md
says why an MLP is not offered).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from workbench.context import StepContext
from workbench.contracts import Columns, Contract, Randomness, RoleNeed
from workbench.errors import RoleError, WorkbenchError
from workbench.ledger import Protection
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.parties import Role
from workbench.report.blocks import Block, Table, Text
from workbench.steps.base import Step, StepParams, register

BUDGET_ITEM = "encrypted_inference/rows-used/{querier}"
"""Where the holder keeps how many rows a querier has had scored, so a budget holds across steps of a run."""
PREDICTION_COLUMN = "prediction"


class InferenceRefused(WorkbenchError, ValueError):
    """The model's holder will not score this model under encryption (not logistic, or weights the parameters do not cover)."""


class EncryptedInferenceParams(StepParams):
    table: str = Field("data", description="The querier's table of patients to score (every row; a querier trained nothing, so it has no split).")
    label: str | None = Field(None, description="Outcome column, if the querier has one: it scores its own AUC on what it decrypts.")
    model: str = Field("federated", description="Model to score with, as the holder saved it (fl_train's save_as).")
    model_owner: str = Field(description="The hospital that holds the model in the clear and computes the encrypted logits.")
    precision: float = Field(1e-4, ge=1e-6, le=1e-2, description="Largest error of a decrypted logit; the CKKS parameters and the flood follow.")
    max_rows_per_querier: int = Field(
        10_000, ge=1, le=10_000_000, description="Rows the holder agrees to score for one querier over the whole run; a query beyond is refused unanswered."
    )
    into: str | None = Field(None, description="Table the querier keeps its scored rows in, with a `prediction` column (nothing of it leaves).")


@register
class EncryptedInference(Step[EncryptedInferenceParams]):
    """Score a clinic's patients with a consortium model under CKKS: features encrypted, weights kept, a budget of rows."""

    kind = "encrypted_inference"
    Params = EncryptedInferenceParams
    roles = (Role.CLINIC, Role.HOSPITAL)

    def default_parties(self, roles: Mapping[str, Role]) -> list[str]:
        """Every clinic, and the model's holder: not the other hospitals, which take no part."""
        owner = [self.params.model_owner] if roles.get(self.params.model_owner) is Role.HOSPITAL else []
        return [party for party, role in roles.items() if role is Role.CLINIC] + owner

    def contract(self) -> Contract:
        p = self.params
        return Contract(
            needs=(RoleNeed(Role.CLINIC), RoleNeed(Role.HOSPITAL, at_least=1, at_most=1)),
            reads=(Columns(p.table, (p.label,) if p.label else (), Role.CLINIC, where=("label",)),),
            reads_models=(f"{p.model}@{p.model_owner}",),
            adds=(Columns(p.into, (PREDICTION_COLUMN,), Role.CLINIC, where=("into",), copies=p.table),) if p.into else (),
            randomness=Randomness.SEED_AND_SYSTEM,  # keys, encryption and the flood, all from the operating system
            exact=False,
        )

    def run(self, ctx: StepContext) -> None:
        from workbench.crypto import ckks_inference as ci

        p = self.params
        queriers = ctx.parties_with(Role.CLINIC)
        if not queriers or p.model_owner not in ctx.parties_with(Role.HOSPITAL):
            raise RoleError(
                f"encrypted_inference runs at {', '.join(ctx.parties)}: it needs at least one clinic to query and the model's owner "
                f"{p.model_owner!r}, a hospital, to answer; list them in `at:`"
            )
        model = ctx.store(p.model_owner).get(model_key(p.model))
        if model.spec.family != "logistic":
            raise InferenceRefused(
                f"{p.model_owner!r} holds {p.model!r} as a {model.spec.family}; encrypted_inference scores logistic models only (an MLP's "
                "activation needs ciphertext products, relinearization keys and a polynomial that misses 1e-4; see docs/inference.md)"
            )
        weights, bias = model.linear_form()
        params = ci.inference_parameters(p.precision)
        margin = ci.flood_margin_bits(params, weights, p.precision)
        if margin < ci.FLOOD_MARGIN_BITS:
            raise InferenceRefused(
                f"{p.model_owner!r}: {p.model!r}'s raw-scale weights sum to {abs(weights).sum():.3g}, so at precision {p.precision:g} the flood "
                f"would hide the CKKS noise by {margin:.1f} bits, under the {ci.FLOOD_MARGIN_BITS} required; ask for a coarser precision"
            )
        for done, querier in enumerate(queriers, start=1):
            ctx.publish(querier, self._query(ctx, querier, model, weights, bias, params) | {"flood_margin_bits": margin})
            ctx.progress(done, len(queriers), querier)

    def _query(self, ctx: StepContext, querier: str, model: Any, weights: Any, bias: float, params: Any) -> dict[str, Any]:
        """One querier's round trip: context and row count, then (if the holder accepts the count) ciphertexts and reply."""
        import numpy as np
        import polars as pl

        from workbench.crypto import ckks
        from workbench.crypto import ckks_inference as ci
        from workbench.crypto.evaluation_budget import EvaluationBudget
        from workbench.models.metrics import roc_auc

        p, store, holder = self.params, ctx.store(querier), self.params.model_owner
        where = TableRef(querier, p.table)
        frame = store.table(p.table)
        X = design_matrix(frame, model.features, where)  # the feature encoding is the recipe's, public to every party
        secret = ckks.secret_context(params)
        public = ctx.send(querier, holder, "inference.context", ckks.context_bytes(secret, secret=False), Protection.NONE)
        declared = json.loads(ctx.send(querier, holder, "inference.rows", json.dumps({"rows": len(X)}).encode(), Protection.NONE))["rows"]

        key = BUDGET_ITEM.format(querier=querier)
        holder_store = ctx.store(holder)
        budget = EvaluationBudget(
            p.max_rows_per_querier, querier, holder, used=holder_store.get(key) if holder_store.has(key) else 0, unit="rows", field="max_rows_per_querier"
        )
        budget.charge(declared)  # before a single ciphertext is sent, let alone processed
        holder_store.put(key, budget.used)

        query = ci.encrypt_rows(secret, X)
        received = ctx.send(querier, holder, "inference.query", ckks.pack([c for column in query for c in column]), Protection.CKKS, row_level=True)
        chunks = ckks.unpack(received, f"inference.query from {querier!r}")
        reply = ci.score(ckks.load_context(public), chunks, declared, weights, bias, p.precision)
        answer = ctx.send(holder, querier, "inference.reply", ckks.pack(reply), Protection.CKKS, row_level=True)
        logits = ckks.decrypt(secret, ckks.unpack(answer, f"inference.reply to {querier!r}"), len(X))
        probability = 1.0 / (1.0 + np.exp(-logits))
        if p.into:
            store.put_table(p.into, frame.with_columns(pl.Series(PREDICTION_COLUMN, probability)))
        summary: dict[str, Any] = {
            "rows": len(X),
            "features": len(weights),
            "query_bytes_per_row": len(received) / len(X),
            "reply_kb": len(answer) / 1000,
            "ring": params.poly_modulus_degree,
            "modulus_bits": "+".join(map(str, params.coeff_mod_bit_sizes)),
            "rows_used": budget.used,
            "rows_allowed": budget.limit,
        }
        if p.label:
            summary["auc"] = roc_auc(label_vector(frame, p.label, where), probability)
            if summary["auc"] is not None:
                ctx.metric("auc", summary["auc"], party=querier)
        return summary

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        parts = [
            f"{querier}: {r['rows']} rows scored encrypted"
            + (f", AUC {r['auc']:.3f}" if r.get("auc") is not None else "")
            + f", {r['query_bytes_per_row'] / 1000:.1f} kB/row"
            for querier, r in results.items()
        ]
        return "; ".join(parts)

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        rows = [
            [
                querier,
                r["rows"],
                r.get("auc"),
                round(r["query_bytes_per_row"]),
                r["reply_kb"],
                f"N={r['ring']}, {r['modulus_bits']} bits",
                round(r["flood_margin_bits"], 1),
                f"{r['rows_used']} of {r['rows_allowed']}",
            ]
            for querier, r in results.items()
        ]
        table = Table(
            "Encrypted inference",
            ["querier", "rows", "AUC", "query bytes/row", "reply kB", "CKKS parameters", "flood margin (bits)", "rows of budget"],
            rows,
            note="The holder saw ciphertexts and each querier's row count; the querier saw its logits, never a weight.",
        )
        return [table, Text("What the logits reveal", cls.leakage(results))]

    @staticmethod
    def leakage(results: dict[str, Any]) -> list[str]:
        """What a querier can learn from its own decrypted logits, stated from the figures it published."""
        said = []
        for querier, r in results.items():
            needed = r["features"] + 1
            if r["rows_allowed"] >= needed:
                said.append(
                    f"{querier}: a logistic model's {r['features']} weights and bias are determined by its logits on {needed} rows in general "
                    f"position, and the budget allows {r['rows_allowed']}: this querier can recover the model (to the flood's noise) by "
                    f"solving a linear system. The encryption protects the weights from the channel and the rows from the holder; only a "
                    f"budget below {needed} rows, for queriers who do not collude, stops exact recovery."
                )
            else:
                said.append(
                    f"{querier}: its budget of {r['rows_allowed']} rows is below the {needed} that determine the model's weights; the logits "
                    "still reveal a linear combination of them for each row scored."
                )
        return said
