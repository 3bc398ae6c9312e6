"""The protocol every reveal mode implements: one small class per mode, driven by the shared pass engine.

A mode answers, for its value of `reveal`:

* which PSI protocol runs a pass, and what each side learns from it (`run_pass`);
* which ledger kinds its messages have, and their protection (`messages`);
* what each side learns across passes (`requester_learns_matches`, `provider_learns_matches`),
  which the engine turns into the records later passes skip, the output tables and the published counts;
* which columns its output tables add (`requester_columns`, `provider_table`);
* the sentences that say what each party learned, for the report (`requester_learned`, `provider_learned`).

The step picks the class from `reveal` once (`modes.mode_for`); nothing else branches on `reveal`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from workbench.context import StepContext
from workbench.ledger import Protection

if TYPE_CHECKING:
    import polars as pl

    from workbench.steps.psi_link.engine import Link
    from workbench.steps.psi_link.params import PsiLinkParams
    from workbench.steps.psi_link.sides import Candidates, Side

Messages = Mapping[str, tuple[Protection, bool]]
"""Ledger kind -> (protection, row_level) of every message a mode's passes send; blinded or encrypted per-record messages are row-level but protected."""


@dataclass(frozen=True)
class PassResult:
    """What one pass between one requester and the provider gave each side."""

    learned: int
    """The count the requester learned: its matched records, or (when it learns only a count) the intersection size."""
    requester_rows: dict[int, Any] = field(default_factory=dict)
    """Requester row -> the mode's value for that link (a link id, a payload), for every record the requester knows matched."""
    provider_rows: dict[int, Any] = field(default_factory=dict)
    """Provider row -> the mode's value for that link, for every record the provider knows matched (empty unless it learns that)."""


class RevealMode(ABC):
    """One value of `reveal`. Class attributes describe the mode; an instance serves one run of the step."""

    reveal: ClassVar[str]
    protocol: ClassVar[str]
    """The PSI protocol a pass runs: "ecdh" (openmined-psi) or "labeled" (RFC 9497 VOPRF + AES-GCM)."""
    messages: ClassVar[Messages]
    requester_learns_matches: ClassVar[bool] = True
    """The requester learns which of its records matched: later passes skip them, and its `into` table holds them.
    A mode where it learns only a count writes no table and takes exactly one pass."""
    provider_learns_matches: ClassVar[bool] = False
    """The provider learns which of its records matched: later passes skip them, and it publishes its linked count."""
    takes_payload: ClassVar[bool] = False
    """The requester receives the provider's `payload_columns` for its matches."""

    def __init__(self, params: PsiLinkParams) -> None:
        self.params = params

    @contextmanager
    def prepared(self, provider: Side) -> Iterator[None]:
        """Step-wide resources for the passes, after every party checked its input and before any message; none by default."""
        yield

    def start(self, link: Link) -> None:
        """Anything one requester and the provider agree on before their first pass; nothing by default."""
        return None

    @abstractmethod
    def run_pass(self, ctx: StepContext, link: Link, pass_name: str, requester: Candidates, provider: Candidates) -> PassResult:
        """One PSI session between the pair on this pass's candidates, every message through `link`'s channels."""

    def requester_columns(self) -> list[str]:
        """Names of the columns the requester's `into` table adds after link_party and link_pass (checked before any message)."""
        return []

    def received_columns(self) -> list[str]:
        """The provider's own data columns among them, which the requester now holds for every linked record (published
        as `received_rows`, so a report can say how many rows of another party's data are behind a model)."""
        return []

    def requester_values(self, link: Link, rows: Sequence[int]) -> list[pl.Series]:
        """Those columns for the requester's linked `rows`, in that order, from the values its passes returned."""
        return []

    def provider_table(self, links: Sequence[Link]) -> pl.DataFrame | None:
        """The provider's `into` table over every pair, or None when the provider learns nothing to write."""
        return None

    def provider_columns(self) -> list[str]:
        """Names of the columns the provider's `into` table adds (checked before any message)."""
        return []

    @classmethod
    @abstractmethod
    def requester_learned(cls, requester: str, summary: Mapping[str, Any]) -> str:
        """What the requester learned, from the counts it published."""

    @classmethod
    def provider_learned(cls, requester: str, summary: Mapping[str, Any]) -> str:
        """What the provider learned about the requester's records, from the requester's published counts."""
        return f"{summary['provider']} learned only the number of records {requester} queried in each pass ({queried(summary)}); nothing about which matched."


def provider_sizes(summary: Mapping[str, Any]) -> str:
    """The size of the provider's set in each pass, as the requester saw it."""
    return ", ".join(str(r["provider_set"]) for r in summary["passes"])


def queried(summary: Mapping[str, Any]) -> str:
    """The number of keys the requester queried in each pass."""
    return ", ".join(str(r["queried"]) for r in summary["passes"])
