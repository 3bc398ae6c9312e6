"""The pass engine every reveal mode shares: the passes over each side's candidates, the atomic commit and the published counts.

A link runs between a requester (a hospital) and the provider (the data
provider) in ordered passes; each pass is one PSI session, run by the mode, on
one combination of normalised identifier fields, over the records that no
earlier pass linked on the side that knows it. The engine never looks at
`reveal`: it asks the mode what each side learns and what the output tables
add. Output tables are written only after every pair has linked, so a failure
leaves every store as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.context import StepContext
from workbench.crypto.evaluation_budget import EvaluationBudget, EvaluationBudgetError
from workbench.data.link_columns import LINK_PARTY, LINK_PASS, MATCHED_COLUMN, RECEIVED_ROWS
from workbench.data.normalize import LinkageInputError, check_same_canonical_forms
from workbench.steps.psi_link.sides import Side, build_side, link_parties

if TYPE_CHECKING:
    import polars as pl

    from workbench.crypto.psi import Send
    from workbench.steps.psi_link.mode import Messages, RevealMode
    from workbench.steps.psi_link.params import PsiLinkParams


@dataclass(frozen=True)
class PassCount:
    """One pass of one pair, in counts: what the parties publish."""

    name: str
    fields: list[str]
    queried: int
    offered: int
    linked: int


@dataclass
class Link:
    """One requester with the provider: the channels between them, the provider's cap for this requester, and what the passes gave."""

    requester: Side
    provider: Side
    budget: EvaluationBudget
    """The provider's evaluation cap for this requester, shared by every pass."""
    to_provider: Send
    to_requester: Send
    passes: list[PassCount] = field(default_factory=list)
    requester_links: dict[int, tuple[str, Any]] = field(default_factory=dict)
    """Requester row -> (pass, the mode's value) for every record the requester knows matched."""
    provider_links: dict[int, tuple[str, Any]] = field(default_factory=dict)
    """Provider row -> (pass, the mode's value) for every record the provider knows matched."""
    count: int = 0
    """What the requester learned in all: its linked records, or the intersection size."""


def channel(ctx: StepContext, messages: Messages, sender: str, receiver: str) -> Send:
    """send(kind, payload) from one party to the other through the ledger, protected as the mode declares the kind; an undeclared kind fails."""

    def send(kind: str, payload: bytes) -> bytes:
        protection, row_level = messages[kind]
        return ctx.send(sender, receiver, kind, payload, protection, row_level=row_level)

    return send


def output_columns(mode: RevealMode, keep_unmatched: bool) -> tuple[list[str] | None, list[str] | None]:
    """The columns the requester's and the provider's `into` tables add to their linked tables, None for a side that writes none."""
    requester = [LINK_PARTY, LINK_PASS, *mode.requester_columns(), *([MATCHED_COLUMN] if keep_unmatched else [])]
    provider = [LINK_PARTY, LINK_PASS, *mode.provider_columns()]
    return (requester if mode.requester_learns_matches else None), (provider if mode.provider_learns_matches else None)


def rows_of(frame: pl.DataFrame, rows: Sequence[int]) -> pl.DataFrame:
    """The given rows, in that order (also when there are none)."""
    import polars as pl

    return frame.select(pl.all().gather(list(rows)))


def link_table(frame: pl.DataFrame, rows: Sequence[int], other: str, passes: Sequence[str]) -> pl.DataFrame:
    """The linked `rows` of one side's table with the columns every output table adds: the other party and the pass."""
    import polars as pl

    return rows_of(frame, rows).with_columns(pl.lit(other).alias(LINK_PARTY), pl.Series(LINK_PASS, list(passes), dtype=pl.Utf8))


def with_unmatched(frame: pl.DataFrame, rows: Sequence[int], linked: pl.DataFrame) -> pl.DataFrame:
    """Every row of `frame` in its own order, with the columns `linked` adds for `rows` (null elsewhere) and a matched flag."""
    import polars as pl

    index = "__row__"
    added = linked.select(pl.exclude(frame.columns)).with_columns(pl.Series(index, list(rows), dtype=pl.UInt32))
    return (
        frame.with_row_index(index)
        .join(added, on=index, how="left")
        .sort(index)
        .with_columns(pl.col(index).is_in(list(rows)).alias(MATCHED_COLUMN))
        .drop(index)
    )


class PassEngine:
    """Runs one psi_link step with one reveal mode: every party checks its input, every pair links, then the tables and counts."""

    def __init__(self, ctx: StepContext, params: PsiLinkParams, mode: RevealMode) -> None:
        self.ctx, self.params, self.mode = ctx, params, mode

    def run(self) -> None:
        ctx, p = self.ctx, self.params
        requesters, provider = link_parties(ctx, p.per_party)
        # Every party checks its own input before any message is sent.
        prov = build_side(ctx, provider, p.provider, p)
        sides = [build_side(ctx, requester, p.requester, p) for requester in requesters]
        for req in sides:
            check_same_canonical_forms((req.party, req.source), (provider, prov.source), p.fields_used())
            self._check_output_columns(req, prov)
        links = []
        with self.mode.prepared(prov):
            for number, req in enumerate(sides):
                try:
                    links.append(self._link(req, prov, progress=(number * len(p.passes), len(sides) * len(p.passes))))
                except EvaluationBudgetError as error:
                    raise LinkageInputError(str(error)) from None
        self._commit(links)
        self._publish(links)

    def _check_output_columns(self, req: Side, prov: Side) -> None:
        """The output tables add link columns (and the mode's); refuse before any message if a name is taken."""
        p = self.params
        for side, added in zip((req, prov), output_columns(self.mode, p.keep_unmatched)):
            if added is None:
                continue
            clash = sorted(set(added) & set(side.frame.columns))
            if clash:
                raise LinkageInputError(
                    f"party {side.party!r}, table {side.source.table!r} already has column(s) {', '.join(clash)}, which the linked table "
                    f"{p.into!r} adds; rename them{' or choose other payload_columns' if p.payload_columns else ''}"
                )

    def _link(self, req: Side, prov: Side, progress: tuple[int, int]) -> Link:
        """Every pass between one requester and the provider; the links stay with the step until all pairs are done."""
        import numpy as np

        ctx, p, mode = self.ctx, self.params, self.mode
        link = Link(
            req,
            prov,
            EvaluationBudget(p.max_queries_per_requester, req.party, prov.party),
            channel(ctx, mode.messages, req.party, prov.party),
            channel(ctx, mode.messages, prov.party, req.party),
        )
        mode.start(link)
        req_linked, prov_linked = np.zeros(req.frame.height, dtype=bool), np.zeros(prov.frame.height, dtype=bool)
        for number, lp in enumerate(p.passes):
            ctx.progress(progress[0] + number, progress[1], f"{req.party} × {prov.party}: pass {lp.name}")
            requester, provider = req.candidates(lp.name, req_linked), prov.candidates(lp.name, prov_linked)
            if not len(requester) or not len(provider):
                link.passes.append(PassCount(lp.name, lp.fields, len(requester), len(provider), 0))
                continue
            result = mode.run_pass(ctx, link, lp.name, requester, provider)
            req_linked[np.fromiter(result.requester_rows, dtype=np.intp, count=len(result.requester_rows))] = True
            prov_linked[np.fromiter(result.provider_rows, dtype=np.intp, count=len(result.provider_rows))] = True
            link.requester_links.update({row: (lp.name, value) for row, value in result.requester_rows.items()})
            link.provider_links.update({row: (lp.name, value) for row, value in result.provider_rows.items()})
            link.count += result.learned
            link.passes.append(PassCount(lp.name, lp.fields, len(requester), len(provider), result.learned))
        ctx.progress(progress[0] + len(p.passes), progress[1], f"{req.party} × {prov.party}: {link.count} linked")
        if link.count == 0:
            raise LinkageInputError(
                f"no record of party {req.party!r} matched party {prov.party!r} in any pass ({', '.join(lp.name for lp in p.passes)}); "
                "check that both sides declare the same fields with each party's own columns and formats, and that the tables cover the same people"
            )
        return link

    def _commit(self, links: list[Link]) -> None:
        """Build every output table, then write them all: a failure before this leaves the stores as they were."""
        p, mode = self.params, self.mode
        tables: list[tuple[str, pl.DataFrame]] = []
        if mode.requester_learns_matches:
            for link in links:
                rows = sorted(link.requester_links)
                linked = link_table(link.requester.frame, rows, link.provider.party, [link.requester_links[r][0] for r in rows])
                linked = linked.with_columns(mode.requester_values(link, rows))
                tables.append((link.requester.party, with_unmatched(link.requester.frame, rows, linked) if p.keep_unmatched else linked))
        provider_table = mode.provider_table(links)
        if provider_table is not None:
            tables.append((links[0].provider.party, provider_table))
        for party, table in tables:
            self.ctx.store(party).put_table(p.into, table)

    def _publish(self, links: list[Link]) -> None:
        """Each party reports counts it knows itself (and what it learned): never a record."""
        p, mode = self.params, self.mode
        provider: dict[str, Any] = {"reveal": p.reveal, "records": links[0].provider.frame.height, "links": {}}
        received = mode.received_columns()
        for link in links:
            self.ctx.publish(
                link.requester.party,
                {
                    "provider": link.provider.party,
                    "reveal": p.reveal,
                    "records": link.requester.frame.height,
                    "linked": link.count,
                    **({RECEIVED_ROWS: {"table": p.into, "columns": received, "rows": link.count}} if received else {}),
                    "passes": [
                        {
                            "pass": r.name,
                            "fields": r.fields,
                            "queried": r.queried,
                            "linked": r.linked,
                            "provider_set": r.offered,
                            "ambiguous": link.requester.ambiguous[r.name],
                            "without_key": link.requester.without_key[r.name],
                        }
                        for r in link.passes
                    ],
                },
            )
            provider["links"][link.requester.party] = {
                "evaluations": link.budget.used,
                "evaluation_cap": link.budget.limit,
                "passes": [
                    {
                        "pass": r.name,
                        "offered": r.offered,
                        "queried": r.queried,
                        "ambiguous": link.provider.ambiguous[r.name],
                        "without_key": link.provider.without_key[r.name],
                        **({"linked": r.linked} if mode.provider_learns_matches else {}),
                    }
                    for r in link.passes
                ],
            }
        self.ctx.publish(links[0].provider.party, provider)
