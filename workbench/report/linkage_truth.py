"""The simulation's scores of a psi_link step against the generator's true links: for report.html and metrics.json only.

No party knows which of a hospital's records are truly the vendor's record of the
same person, and in most reveal modes no party knows which vendor record a link
matched. The simulation does: it holds every party's tables in the clear and the
generator's truth. So after the step has committed its tables, the runner calls
`score_linkage`, which pairs each link with the provider record whose normalised
key matched in the pass that linked it (from the requester's `into` table; in a
mode where the requester learns only a count, from the intersection the count was
taken of) and compares the pairs with the truth. The step never sees the truth,
and its scores go to metrics.json under `SIMULATION_TRUTH`, apart from every
party's results; the report shows them in the step's tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from workbench.context import StepContext
from workbench.data.link_columns import LINK_PARTY, LINK_PASS
from workbench.steps.base import StepParams
from workbench.steps.psi_link.modes import mode_for
from workbench.steps.psi_link.params import PsiLinkParams
from workbench.steps.psi_link.sides import Side, build_side, link_parties

SIMULATION_TRUTH = "simulation_truth"
"""Top-level key of metrics.json holding the simulation's scores by step: computed from the generator's truth, sent by no party."""
TRUE_IDS = ("patient_id", "person_key")
"""Columns of the generator's true links: the hospital's record id and the provider's."""


def score_linkage(params: StepParams, ctx: StepContext, truth: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per requester of a psi_link step that just ran: precision and recall per pass (cumulative) and overall, when the truth covers it.

    `ctx` is the finished step's context: only its parties' stores are read, and nothing is sent or published.
    """
    if not isinstance(params, PsiLinkParams) or not truth or params.provider.id_column is None:
        return None
    requesters, provider = link_parties(ctx, params.per_party)
    prov = build_side(ctx, provider, params.provider, params)
    scores = {}
    for requester in requesters:
        req = build_side(ctx, requester, params.requester, params)
        if req.source.id_column is None:
            continue
        linked = _linked_ids(ctx, params, req, provider) if mode_for(params.reveal).requester_learns_matches else None
        found = [_pairs(req, prov, lp.name, None if linked is None else linked.get(lp.name, [])) for lp in params.passes]
        score = _score(req, prov, [lp.name for lp in params.passes], found, truth)
        if score is not None:
            scores[requester] = score
    return scores or None


def _ids(side: Side) -> pl.Series:
    assert side.source.id_column is not None
    return side.frame.get_column(side.source.id_column).cast(pl.Utf8)


def _linked_ids(ctx: StepContext, params: PsiLinkParams, req: Side, provider: str) -> dict[str, list[str]]:
    """The requester's record ids its `into` table shows linked with `provider`, by the pass that linked them."""
    assert req.source.id_column is not None
    linked = (
        ctx.store(req.party)
        .table(params.into)
        .filter((pl.col(LINK_PARTY) == provider) & pl.col(LINK_PASS).is_not_null())
        .select(pl.col(req.source.id_column).cast(pl.Utf8).alias("id"), LINK_PASS)
    )
    return dict(linked.group_by(LINK_PASS).agg("id").iter_rows())


def _pairs(req: Side, prov: Side, pass_name: str, linked: list[str] | None) -> set[tuple[str, str]]:
    """(requester id, provider id) of the records whose keys are equal in this pass, among the requester's `linked` (None: all)."""
    mine = pl.DataFrame({"id": _ids(req), "key": req.keys.get_column(pass_name)})
    if linked is not None:
        mine = mine.filter(pl.col("id").is_in(pl.Series(linked, dtype=pl.Utf8).implode()))
    theirs = pl.DataFrame({"other": _ids(prov), "key": prov.keys.get_column(pass_name)})
    joined = mine.join(theirs, on="key")  # null keys never join; keys are unique per side once ambiguous ones are nulled
    return set(zip(joined["id"].to_list(), joined["other"].to_list()))


def _score(req: Side, prov: Side, names: list[str], found_per_pass: list[set[tuple[str, str]]], truth: Mapping[str, Any]) -> dict[str, Any] | None:
    """The scores against the first truth whose links join these two tables."""
    req_ids, prov_ids = _ids(req), _ids(prov)
    for dataset_truth in truth.values():
        links = getattr(dataset_truth, "links", None)
        if not isinstance(links, pl.DataFrame) or not set(TRUE_IDS) <= set(links.columns):
            continue
        true = links.filter(pl.col(TRUE_IDS[0]).is_in(req_ids.implode()) & pl.col(TRUE_IDS[1]).is_in(prov_ids.implode()))
        if true.height == 0:
            continue
        true_pairs = set(zip(true[TRUE_IDS[0]].to_list(), true[TRUE_IDS[1]].to_list()))
        found: set[tuple[str, str]] = set()
        passes = []
        for name, new in zip(names, found_per_pass):
            found |= new
            correct = len(found & true_pairs)
            passes.append(
                {
                    "pass": name,
                    "linked": len(new),
                    "correct": len(new & true_pairs),
                    "precision": _ratio(correct, len(found)),
                    "recall": _ratio(correct, len(true_pairs)),
                }
            )
        correct_pairs = found & true_pairs
        missed = true.filter(~pl.struct(*TRUE_IDS).is_in(pl.DataFrame(sorted(correct_pairs), schema=list(TRUE_IDS), orient="row").to_struct().implode()))
        return {
            "true_links": len(true_pairs),
            "linked": len(found),
            "correct": len(correct_pairs),
            "precision": _ratio(len(correct_pairs), len(found)),
            "recall": _ratio(len(correct_pairs), len(true_pairs)),
            "passes": passes,
            "missed_by_noise": {str(kind): int(n) for kind, n in missed.group_by("noise").len().fill_null("none").iter_rows()}
            if "noise" in missed.columns
            else {},
        }
    return None


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None
