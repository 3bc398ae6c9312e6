"""Every reveal mode by its `reveal` value: the one place a mode is chosen."""

from __future__ import annotations

from workbench.steps.psi_link.both import BothMode
from workbench.steps.psi_link.cardinality import CardinalityMode
from workbench.steps.psi_link.mode import RevealMode
from workbench.steps.psi_link.payload import PayloadMode
from workbench.steps.psi_link.requester import RequesterMode

MODES: dict[str, type[RevealMode]] = {mode.reveal: mode for mode in (RequesterMode, BothMode, PayloadMode, CardinalityMode)}


def mode_for(reveal: str) -> type[RevealMode]:
    """The class of a reveal mode: for the step (once per run), its parameter checks and its report (from the published `reveal`)."""
    return MODES[reveal]
