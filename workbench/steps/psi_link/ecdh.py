"""One ECDH-PSI session (openmined-psi) between a pair, for the modes whose passes run it: requester, both and cardinality.

openmined-psi loads only when a pass runs, so loading or validating a recipe does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.ledger import Protection
from workbench.steps.psi_link.mode import Messages

if TYPE_CHECKING:
    from workbench.crypto.psi import PsiOutcome
    from workbench.steps.psi_link.engine import Link
    from workbench.steps.psi_link.params import PsiLinkParams

ECDH_MESSAGES: Messages = {
    "psi.request": (Protection.BLINDED, True),
    "psi.setup": (Protection.BLINDED, True),
    "psi.response": (Protection.BLINDED, True),
}
"""The session's messages: the requester's blinded keys, the provider's encrypted set, the provider's re-encryption of the keys."""


def ecdh_session(params: PsiLinkParams, link: Link, requester_keys: list[str], provider_keys: list[str], *, reveal: bool) -> PsiOutcome:
    """Fresh keys on both sides; the requester learns which of its keys the provider holds (reveal) or only how many."""
    from workbench.crypto.psi import PsiClient, PsiServer, run_psi

    p = params
    return run_psi(
        PsiClient(requester_keys, reveal_intersection=reveal, chunk_size=p.chunk_size, parallelism=p.workers),
        PsiServer(
            provider_keys,
            reveal_intersection=reveal,
            fpr=p.fpr,
            data_structure=p.data_structure,
            chunk_size=p.chunk_size,
            parallelism=p.workers,
            budget=link.budget,
        ),
        link.to_provider,
        link.to_requester,
        workers=p.workers,
    )
