"""Cohort statistics summed across hospitals under CKKS: counts, sums, sums of squares, histograms.

Each hospital computes its statistics on its own rows and encrypts them as
exact fixed-point limbs (`crypto.secure_sum`); the aggregator adds the
ciphertexts with a context that holds no secret key; only the total is ever
decrypted, by whoever custody says holds the key:

* custody `clients`: the aggregator sends the encrypted total to one hospital,
  which decrypts it and publishes it to the coordinator;
* custody `key_holder`: the aggregator adds a fresh integer mask, the key holder
  decrypts only that masked total and returns it rounded, the aggregator removes
  the mask and publishes the total.

Histogram bins are declared in the recipe, never discovered from the data:
discovering them would reveal a site's extreme values. Totals are exact (every
site's value is rounded to 2^-frac_bits once, nothing after), so the same
recipe and seed publish the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.context import StepContext
from workbench.contracts import Columns, Contract, Randomness, RoleNeed
from workbench.crypto import ckks
from workbench.crypto import secure_sum as ss
from workbench.data.splits import SPLIT_COLUMN, split_part
from workbench.errors import RoleError
from workbench.ledger import Protection
from workbench.models.features import FeatureSpec, TableRef, design_matrix
from workbench.parties import MissingItemError, Role
from workbench.report.blocks import Block, Table, Text
from workbench.steps.base import Step, StepParams, register

if TYPE_CHECKING:  # numpy loads when the step runs, not when a recipe is validated
    import numpy as np


class Histogram(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Numeric column to count values of.")
    edges: list[float] = Field(
        min_length=2,
        description="Increasing bin edges; bins are [edge_i, edge_i+1), plus one bin "
        "below the first edge and one from the last edge up, so every row is counted.",
    )

    @model_validator(mode="after")
    def _increasing(self) -> Histogram:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])) or not all(math.isfinite(e) for e in self.edges):
            raise ValueError(f"histogram edges of {self.column!r} must be finite and strictly increasing, got {self.edges}")
        return self

    def bins(self) -> list[str]:
        labels = [f"[{a:g}, {b:g})" for a, b in zip(self.edges, self.edges[1:])]
        return [f"< {self.edges[0]:g}", *labels, f">= {self.edges[-1]:g}"]


class SecureSumParams(StepParams):
    table: str = Field("data", description="Table each hospital computes its statistics on.")
    rows: Literal["all", "train", "test"] = Field(
        "all", description="all rows, or only the `split` step's training (is_test false) or held-out (is_test true) rows."
    )
    count: bool = Field(True, description="Sum the number of rows.")
    sum: list[str] = Field(default_factory=list, description="Numeric or Boolean columns whose values are summed.")
    sum_of_squares: list[str] = Field(
        default_factory=list, description="Columns whose squared values are summed (with count and sum: the pooled standard deviation)."
    )
    histograms: list[Histogram] = Field(default_factory=list, description="Columns counted into declared bins.")
    codec: ss.FixedPoint = Field(
        default_factory=ss.FixedPoint,
        description="Fixed-point resolution, declared range of each site's value and limb size; a value out of range stops the step naming it.",
    )

    @model_validator(mode="after")
    def _asks_something(self) -> SecureSumParams:
        if not (self.count or self.sum or self.sum_of_squares or self.histograms):
            raise ValueError("secure_sum has nothing to sum: ask for count, sum, sum_of_squares or histograms")
        return self

    def statistic_names(self) -> list[str]:
        """One name per summed value, in the order of the encrypted vector (the same at every site)."""
        return [
            *(["count"] if self.count else []),
            *(f"sum[{c}]" for c in self.sum),
            *(f"sum_of_squares[{c}]" for c in self.sum_of_squares),
            *(f"histogram[{h.column}]{label}" for h in self.histograms for label in h.bins()),
        ]


@dataclass(frozen=True)
class Parties:
    hospitals: list[str]
    aggregator: str
    key_holder: str | None


@register
class SecureSum(Step[SecureSumParams]):
    """Sums statistics over hospitals under CKKS; the coordinator gets the totals, nobody a site's own."""

    kind = "secure_sum"
    Params = SecureSumParams
    roles = (Role.HOSPITAL, Role.AGGREGATOR, Role.KEY_HOLDER)

    def contract(self) -> Contract:
        p = self.params
        columns = (*p.sum, *p.sum_of_squares, *(h.column for h in p.histograms))
        reads = (
            Columns(p.table, tuple(dict.fromkeys(columns)), where=("sum",)),
            *((Columns(p.table, (SPLIT_COLUMN,), where=("rows",)),) if p.rows != "all" else ()),
        )
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL), RoleNeed(Role.AGGREGATOR, 1, 1)),
            reads=reads,
            needs_keys=(Role.HOSPITAL, Role.AGGREGATOR),
            randomness=Randomness.SEED_AND_SYSTEM,
            exact=False,
        )

    def run(self, ctx: StepContext) -> None:
        parties = self._parties(ctx)
        codec, names = self.params.codec, self.params.statistic_names()
        keyless = ckks.load_context(ctx.store(parties.aggregator).get(ckks.AGGREGATOR_ITEM))
        shares = []
        for done, hospital in enumerate(parties.hospitals, start=1):
            context = self._hospital_context(ctx, hospital, parties.key_holder)
            codec.check_context(context, len(parties.hospitals))
            limbs = codec.encode(self._statistics(ctx, hospital), [f"{name} at {hospital!r}" for name in names])
            share = ctx.send(hospital, parties.aggregator, "secure_sum.share", ckks.pack(ss.encrypt(context, limbs)), Protection.CKKS)
            shares.append(ckks.unpack(share, f"secure_sum.share from {hospital!r}"))
            ctx.progress(done, len(parties.hospitals) + 1, hospital)
        total = ckks.add(keyless, shares)  # at the aggregator, which holds no secret key
        if parties.key_holder is None:
            publisher, totals = self._decrypt_at_hospital(ctx, parties, total)
        else:
            publisher, totals = parties.aggregator, self._decrypt_at_key_holder(ctx, parties, keyless, total)
        ctx.progress(len(parties.hospitals) + 1, len(parties.hospitals) + 1, "total")
        ctx.publish(publisher, self._summary(parties, codec.to_float(totals).tolist()))

    def _parties(self, ctx: StepContext) -> Parties:
        hospitals, aggregators = ctx.parties_with(Role.HOSPITAL), ctx.parties_with(Role.AGGREGATOR)
        if len(aggregators) != 1 or not hospitals:
            raise RoleError(f"secure_sum needs one aggregator and at least one hospital among its parties; got {list(ctx.parties)}")
        aggregator = aggregators[0]
        if not ctx.store(aggregator).has(ckks.AGGREGATOR_ITEM):
            raise MissingItemError(f"secure_sum needs CKKS keys, and {aggregator!r} holds none: add a `ckks_keys` step before secure_sum")
        holder = ctx.store(aggregator).get(ckks.CUSTODY_ITEM)["key_holder"]  # None under custody clients
        if holder is not None and holder not in ctx.parties:
            raise RoleError(f"custody key_holder: {holder!r} must be among secure_sum's parties to decrypt the masked total")
        return Parties(hospitals, aggregator, holder)

    def _hospital_context(self, ctx: StepContext, hospital: str, key_holder: str | None) -> Any:
        item = ckks.PUBLIC_ITEM if key_holder else ckks.SECRET_ITEM
        if not ctx.store(hospital).has(item):
            raise MissingItemError(f"secure_sum: hospital {hospital!r} holds no CKKS key ({item}); was it among the `ckks_keys` step's parties?")
        return ckks.load_context(ctx.store(hospital).get(item))

    def _statistics(self, ctx: StepContext, hospital: str) -> np.ndarray:
        """The site's own statistics, on its own rows, in `statistic_names` order."""
        import numpy as np

        p = self.params
        where = TableRef(hospital, p.table)
        frame = ctx.store(hospital).table(p.table)
        if p.rows != "all":
            frame = split_part(frame, where, test=p.rows == "test")
        columns = list(dict.fromkeys([*p.sum, *p.sum_of_squares, *(h.column for h in p.histograms)]))
        X = design_matrix(frame, FeatureSpec(numeric=columns), where)  # names the party, table and column that do not fit
        column = {name: X[:, i] for i, name in enumerate(columns)}
        histograms = [np.histogram(column[h.column], [-np.inf, *h.edges, np.inf])[0] for h in p.histograms]
        return np.concatenate(
            [[float(len(frame))] if p.count else [], [column[c].sum() for c in p.sum], [(column[c] ** 2).sum() for c in p.sum_of_squares], *histograms]
        ).astype(np.float64)

    def _decrypt_at_hospital(self, ctx: StepContext, parties: Parties, total: list[bytes]) -> tuple[str, list[int]]:
        """Custody clients: the first hospital decrypts the total (it holds the shared secret key) and publishes it."""
        decryptor = parties.hospitals[0]
        received = ctx.send(parties.aggregator, decryptor, "secure_sum.total", ckks.pack(total), Protection.CKKS)
        secret = ckks.load_context(ctx.store(decryptor).get(ckks.SECRET_ITEM))
        count = len(self.params.statistic_names())
        return decryptor, ss.decrypt(secret, ckks.unpack(received, "secure_sum.total"), count, self.params.codec, len(parties.hospitals))

    def _decrypt_at_key_holder(self, ctx: StepContext, parties: Parties, public: Any, total: list[bytes]) -> list[int]:
        """Custody key_holder: mask at the aggregator, decrypt and round at the key holder, unmask at the aggregator."""
        import numpy as np

        assert parties.key_holder is not None
        codec, count, n = self.params.codec, len(self.params.statistic_names()), len(parties.hospitals)
        masked = ss.mask(public, total, count, codec, n)
        received = ctx.send(parties.aggregator, parties.key_holder, "secure_sum.masked_total", ckks.pack(masked.chunks), Protection.CKKS)
        secret = ckks.load_context(ctx.store(parties.key_holder).get(ckks.SECRET_ITEM))
        seen = ss.decrypt_masked(secret, ckks.unpack(received, "secure_sum.masked_total"), count * codec.limbs, codec, n)
        answer = ctx.send(parties.key_holder, parties.aggregator, "secure_sum.masked_decryption", seen.astype("<i8").tobytes(), Protection.MASKED)
        return ss.unmask(np.frombuffer(answer, dtype="<i8"), masked, codec, n)

    def _summary(self, parties: Parties, totals: list[float]) -> dict[str, Any]:
        p = self.params
        values = iter(totals)
        summary: dict[str, Any] = {
            "table": p.table,
            "rows": p.rows,
            "sites": parties.hospitals,
            "aggregator": parties.aggregator,
            "custody": "key_holder" if parties.key_holder else "clients",
            "key_holder": parties.key_holder,
            "resolution": 2.0**-p.codec.frac_bits,
            "statistical_distance": ss.statistical_distance(p.codec, len(parties.hospitals), len(totals) * p.codec.limbs) if parties.key_holder else None,
        }
        if p.count:
            summary["count"] = next(values)
        summary["sum"] = {c: next(values) for c in p.sum}
        summary["sum_of_squares"] = {c: next(values) for c in p.sum_of_squares}
        summary["histograms"] = {h.column: {"edges": h.edges, "bins": h.bins(), "counts": [next(values) for _ in h.bins()]} for h in p.histograms}
        return summary

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        summary: dict[str, Any] = next(iter(results.values()), {})
        return f"totals of {summary.get('count', 0):.0f} rows from {len(summary.get('sites', []))} sites, under custody {summary.get('custody')}"

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        ((publisher, s),) = results.items()
        blocks: list[Block] = [Text("What each party saw", [_story(publisher, s)])]
        count = s.get("count")
        columns = list(dict.fromkeys([*s["sum"], *s["sum_of_squares"]]))
        rows = [[c, s["sum"].get(c), *_mean_std(count, s["sum"].get(c), s["sum_of_squares"].get(c))] for c in columns]
        title = f"Totals over {len(s['sites'])} sites, table {s['table']!r}, {s['rows']} rows" + (f": {count:.0f} rows" if count is not None else "")
        if rows or count is not None:
            blocks.append(Table(title, ["column", "sum", "mean", "std"], rows or [["(count only)", None, None, None]]))
        for column, histogram in s["histograms"].items():
            blocks.append(
                Table(
                    f"Histogram of {column!r} over {len(s['sites'])} sites",
                    ["bin", "count"],
                    [[label, round(value)] for label, value in zip(histogram["bins"], histogram["counts"])],
                )
            )
        return blocks


def _mean_std(count: float | None, total: float | None, squares: float | None) -> list[float | None]:
    """Pooled mean and (population) standard deviation from the totals, where the statistics asked allow them."""
    if not count or total is None:
        return [None, None]
    mean = total / count
    return [mean, None if squares is None else math.sqrt(max(squares / count - mean**2, 0.0))]


def _story(publisher: str, s: dict[str, Any]) -> str:
    sites = ", ".join(s["sites"])
    if s["custody"] == "key_holder":
        return (
            f"Custody key_holder. Each hospital ({sites}) encrypted its statistics under the key holder's public key (protection: ckks); "
            f"the aggregator '{s['aggregator']}' added the ciphertexts and a fresh integer mask (uniform in ±2^{ss.MASK_BITS}); "
            f"the key holder '{s['key_holder']}' decrypted only that masked total and returned it rounded to integers, so without "
            f"decryption noise (its view is within statistical distance {s['statistical_distance']:.1e} of any other total's); the "
            "aggregator removed the mask and published the totals to the coordinator. No single party saw a site's statistics; "
            "the aggregator and the key holder together could."
        )
    return (
        f"Custody clients. Each hospital ({sites}) encrypted its statistics under the hospitals' shared key (protection: ckks); "
        f"the aggregator '{s['aggregator']}' added the ciphertexts with a context holding no secret key and saw no value; "
        f"'{publisher}' decrypted only the total and published it to the coordinator. Any hospital holding the key could read "
        "another's statistics if it obtained them; none was sent any."
    )
