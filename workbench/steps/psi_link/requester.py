"""reveal requester: the requester learns which of its records the provider holds (ECDH-PSI); the provider learns only set sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workbench.context import StepContext
from workbench.steps.psi_link.ecdh import ECDH_MESSAGES, ecdh_session
from workbench.steps.psi_link.engine import Link
from workbench.steps.psi_link.mode import Messages, PassResult, RevealMode, provider_sizes
from workbench.steps.psi_link.sides import Candidates


class RequesterMode(RevealMode):
    """Each pass is one ECDH-PSI session that reveals the intersection to the requester; its `into` table holds its matched rows."""

    reveal: ClassVar[str] = "requester"
    protocol: ClassVar[str] = "ecdh"
    messages: ClassVar[Messages] = ECDH_MESSAGES

    def run_pass(self, ctx: StepContext, link: Link, pass_name: str, requester: Candidates, provider: Candidates) -> PassResult:
        found = ecdh_session(self.params, link, requester.keys, provider.keys, reveal=True)
        assert found.indices is not None
        return PassResult(found.size, {int(requester.rows[i]): None for i in found.indices})

    @classmethod
    def requester_learned(cls, requester: str, summary: Mapping[str, Any]) -> str:
        s, prov = summary, summary["provider"]
        return (
            f"{requester} learned which {s['linked']} of its {s['records']} records {prov} also holds, "
            f"and the size of {prov}'s key set in each pass ({provider_sizes(s)})."
        )
