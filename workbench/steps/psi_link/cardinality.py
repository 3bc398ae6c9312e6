"""reveal cardinality: the requester learns only how many of its records the provider holds (ECDH-PSI without the intersection)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workbench.context import StepContext
from workbench.steps.psi_link.ecdh import ECDH_MESSAGES, ecdh_session
from workbench.steps.psi_link.engine import Link
from workbench.steps.psi_link.mode import Messages, PassResult, RevealMode, provider_sizes
from workbench.steps.psi_link.sides import Candidates


class CardinalityMode(RevealMode):
    """One ECDH-PSI session that reveals only the intersection size: no side learns a record, no store changes, one pass only."""

    reveal: ClassVar[str] = "cardinality"
    protocol: ClassVar[str] = "ecdh"
    messages: ClassVar[Messages] = ECDH_MESSAGES
    requester_learns_matches: ClassVar[bool] = False

    def run_pass(self, ctx: StepContext, link: Link, pass_name: str, requester: Candidates, provider: Candidates) -> PassResult:
        return PassResult(ecdh_session(self.params, link, requester.keys, provider.keys, reveal=False).size)

    @classmethod
    def requester_learned(cls, requester: str, summary: Mapping[str, Any]) -> str:
        s, prov = summary, summary["provider"]
        return f"{requester} learned only how many of its records {prov} also holds ({s['linked']}) and the size of {prov}'s key set ({provider_sizes(s)})."
