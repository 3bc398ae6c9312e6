"""Record linkage by private set intersection: each hospital finds the vendor's records of its patients.

A link runs between a requester (a hospital) and a provider (the data provider) in
ordered passes; each pass is one PSI session, with fresh keys, on one combination
of normalised identifier fields, over the requester's records that no earlier pass
linked. Links are the union over passes: a typo in one field is survived by a pass
that leaves that field out, without fuzzy matching in the clear.

What each side learns is set by `reveal`, one class per mode (docs/psi.md has the protocols):

* requester   (requester.py)   - the requester learns which of its records matched (ECDH-PSI).
* both        (both.py)        - as requester, then the requester names the matched keys to the
                                 provider: both hold the aligned records under a shared link_id.
* payload     (payload.py)     - labeled PSI: the requester gets the provider's payload columns
                                 for its matched records; the provider learns only set sizes.
* cardinality (cardinality.py) - the requester learns only how many records match (one pass).

The modes implement one protocol (mode.py) and share one pass engine (engine.py) over each
party's records and keys (sides.py); contract.py declares what the step needs and writes, for
`workbench validate`.
Every message goes through the ledger. The step never sees the generator's truth:
the simulation scores the linked tables after the step (workbench/report/linkage_truth.py).
Nothing here loads a PSI library until a pass runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.context import StepContext
from workbench.contracts import Contract
from workbench.data.link_columns import MATCHED_COLUMN
from workbench.parties import Role
from workbench.report.blocks import Block
from workbench.steps.base import Step, register, total
from workbench.steps.psi_link.contract import link_contract
from workbench.steps.psi_link.engine import PassEngine
from workbench.steps.psi_link.modes import mode_for
from workbench.steps.psi_link.params import LinkPass, PsiLinkParams, Reveal
from workbench.steps.psi_link.summary import report_blocks

__all__ = ["MATCHED_COLUMN", "LinkPass", "PsiLink", "PsiLinkParams", "Reveal"]


@register
class PsiLink(Step[PsiLinkParams]):
    """Links each hospital's records with the data provider's by PSI on normalised identifiers, in passes."""

    kind = "psi_link"
    Params = PsiLinkParams
    roles = (Role.HOSPITAL, Role.DATA_PROVIDER)

    def contract(self) -> Contract:
        return link_contract(self.params)

    def run(self, ctx: StepContext) -> None:
        PassEngine(ctx, self.params, mode_for(self.params.reveal)(self.params)).run()

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        requesters: dict[str, Any] = {party: summary for party, summary in results.items() if "linked" in summary}
        return f"{total(requesters, 'linked')} of {total(requesters, 'records')} records linked at {len(requesters)} parties"

    @classmethod
    def summarize(cls, results: dict[str, Any], truth: Mapping[str, Any] | None = None) -> list[Block]:
        """The step's blocks; the report passes `truth`, the simulation's scores for this step, kept apart from what parties published."""
        return report_blocks(results, truth)
