"""Each party's records as it sees them for linking: its table, its normalised key per pass, and the checks it makes on them.

Built by the step before any message, and by the simulation's scorer after the step
(workbench/report/linkage_truth.py), so both read the keys the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.context import StepContext
from workbench.data.normalize import KeySource, LinkageInputError, composite_key, normalized_fields
from workbench.parties import Role

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from workbench.steps.psi_link.params import PsiLinkParams


@dataclass(frozen=True)
class Candidates:
    """The records of one side that take part in a pass: their row numbers and normalised keys, in row order."""

    rows: np.ndarray
    keys: list[str]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Side:
    """One party's records, as the party itself sees them: its table and its key per pass."""

    party: str
    source: KeySource
    frame: pl.DataFrame
    keys: pl.DataFrame
    """One column per pass: the normalised composite key, null where the record has none or (skip) it is ambiguous."""
    ambiguous: dict[str, int]
    without_key: dict[str, int]

    def candidates(self, pass_name: str, linked: np.ndarray) -> Candidates:
        """The records that take part in a pass: those with a key that no earlier pass linked (as far as this side knows)."""
        import numpy as np

        keys = self.keys.get_column(pass_name)
        rows = np.flatnonzero(keys.is_not_null().to_numpy() & ~linked)
        return Candidates(rows, keys.gather(rows).to_list())


def link_parties(ctx: StepContext, per_party: Mapping[str, KeySource]) -> tuple[list[str], str]:
    """The step's requesters (hospitals) and its one provider (data provider), or why they do not make a link."""
    requesters, providers = ctx.parties_with(Role.HOSPITAL), ctx.parties_with(Role.DATA_PROVIDER)
    if len(providers) != 1 or not requesters:
        raise LinkageInputError(
            f"psi_link links hospitals with one data provider; it runs at {', '.join(ctx.parties)} "
            f"({len(requesters)} hospital(s), {len(providers)} data provider(s)): list one provider and its hospitals in `at:`"
        )
    unknown = sorted(set(per_party) - set(ctx.parties))
    if unknown:
        raise LinkageInputError(f"per_party names {', '.join(map(repr, unknown))}, which this step does not run at ({', '.join(ctx.parties)})")
    return requesters, providers[0]


def build_side(ctx: StepContext, party: str, declared: KeySource, params: PsiLinkParams) -> Side:
    """A party's table and its normalised key per pass, after the checks that party makes on its own input."""
    import polars as pl

    source = params.source(party, declared)
    where = f"party {party!r}, table {source.table!r}"
    frame = ctx.store(party).table(source.table)
    if frame.height == 0:
        raise LinkageInputError(f"{where} has no rows: there is nothing to link")
    if source.id_column is not None:
        if source.id_column not in frame.columns:
            raise LinkageInputError(f"{where}: id_column {source.id_column!r} is not in the table; it has {', '.join(frame.columns)}")
        repeated = frame.height - frame.get_column(source.id_column).n_unique()
        if repeated:
            raise LinkageInputError(
                f"{where}: {repeated} record(s) repeat an id in column {source.id_column!r}; each record must appear once, so remove the duplicates first"
            )
    fields = normalized_fields(frame, source, params.fields_used(), where)
    keys = fields.select(**{lp.name: composite_key(lp.fields) for lp in params.passes})
    ambiguous, without_key = {}, {}
    for lp in params.passes:
        column = keys.get_column(lp.name)
        shared = column.is_duplicated() & column.is_not_null()
        ambiguous[lp.name] = int(shared.sum())
        without_key[lp.name] = int(column.is_null().sum())
        if ambiguous[lp.name] and params.duplicates == "error":
            raise LinkageInputError(
                f"{where}: {ambiguous[lp.name]} records share their key in pass {lp.name!r} "
                f"(columns {', '.join(source.fields[f].column for f in lp.fields)}), so the key cannot tell them apart; "
                "add a field to the pass, remove duplicate records, or set duplicates: skip to leave them out of that pass"
            )
        keys = keys.with_columns(pl.when(shared).then(None).otherwise(column).alias(lp.name))
    return Side(party, source, frame, keys, ambiguous, without_key)
