"""The step's part of the report: linkage per pass and overall, and what each party learned, from what the coordinator holds.

Counts come from what the parties published. Precision and recall come from the
simulation's scores against the generator's truth (workbench/report/linkage_truth.py),
which no party sent and the step never saw; without them those columns stay empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.report.blocks import Block, Table, Text
from workbench.steps.psi_link.modes import mode_for


def report_blocks(results: Mapping[str, Any], truth: Mapping[str, Any] | None = None) -> list[Block]:
    """The step's tables and disclosure; `truth` is the simulation's scores for this step by requester, when it has any."""
    requesters = {party: s for party, s in results.items() if "provider" in s}
    truth = truth or {}
    blocks: list[Block] = []
    rows, keys = [], {}
    for party, s in requesters.items():
        scored = {r["pass"]: r for r in truth.get(party, {}).get("passes", [])}
        total = 0
        for r in s["passes"]:
            total += r["linked"]
            keys[r["pass"]] = " + ".join(r["fields"])
            score = scored.get(r["pass"], {})
            rows.append([party, r["pass"], r["queried"], r["provider_set"], r["linked"], total, score.get("precision"), score.get("recall")])
    blocks.append(
        Table(
            "Linkage per pass",
            ["requester", "pass", "queried", "provider set", "linked", "linked so far", "precision so far", "recall so far"],
            rows,
            note="Keys: " + "; ".join(f"{name} = {key}" for name, key in keys.items()) + ". Precision and recall are scored "
            "by the simulation against the generator's true links (empty without one).",
        )
    )
    overall = [
        [
            party,
            s["provider"],
            s["reveal"],
            s["records"],
            s["linked"],
            truth.get(party, {}).get("true_links"),
            truth.get(party, {}).get("precision"),
            truth.get(party, {}).get("recall"),
        ]
        for party, s in requesters.items()
    ]
    blocks.append(Table("Linkage overall", ["requester", "provider", "reveal", "records", "linked", "true links", "precision", "recall"], overall))
    missed = [[party, kind, count] for party, t in truth.items() for kind, count in sorted(t.get("missed_by_noise", {}).items())]
    if missed:
        blocks.append(Table("True links missed, by identifier noise", ["requester", "noise", "missed"], missed))
    blocks.append(Text("What each party learned", disclosure(results)))
    return blocks


def disclosure(results: Mapping[str, Any]) -> list[str]:
    """Two sentences per requester (what it and the provider learned, in its reveal mode's words), then the provider's cap and the coordinator."""
    statements = []
    for party, s in results.items():
        if "provider" in s:
            mode = mode_for(s["reveal"])
            statements += [mode.requester_learned(party, s), mode.provider_learned(party, s)]
    provider_summary = next(((party, s) for party, s in results.items() if "links" in s), None)
    if provider_summary is not None:
        provider, summary = provider_summary
        statements.extend(
            f"{provider} evaluated {link['evaluations']} identifiers for {requester}, under its cap of {link['evaluation_cap']} "
            "per requester (max_queries_per_requester): a larger query would have been refused before any evaluation."
            for requester, link in summary["links"].items()
            if "evaluation_cap" in link
        )
        statements.append("The coordinator received counts only (records, queried, linked per pass); no identifier or record left a party for it.")
    return statements
