"""What a psi_link recipe declares: both sides' identifiers, the passes, and what `reveal` lets each side learn.

Checked once when the recipe loads. The checks that depend on the reveal mode ask
the mode's own declarations (does the requester learn which records matched,
does it take payload columns), so a new mode needs no new branch here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.data.link_columns import MATCHED_COLUMN
from workbench.data.normalize import KeySource
from workbench.steps.base import StepParams
from workbench.steps.psi_link.modes import MODES, mode_for

Reveal = Literal["requester", "both", "payload", "cardinality"]
"""The reveal modes, as the recipe schema lists them; tests check that each has its class in `MODES`."""
DataStructure = Literal["auto", "gcs", "raw", "bloom"]
"""ECDH-PSI setup encodings: workbench.crypto.psi.DataStructure, repeated so that loading a recipe does not load openmined-psi
(tests/steps/test_psi_link_modes.py checks that the two agree)."""
DEFAULT_CHUNK = 100_000
"""Requester records per ECDH-PSI request: workbench.crypto.psi.DEFAULT_CHUNK, repeated for the same reason (and checked the same way)."""


class LinkPass(BaseModel):
    """One combination of identifier fields, linked in one PSI session."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Name of the pass in the report and in the `link_pass` column.")
    fields: list[str] = Field(min_length=1, description="Identifier fields (as declared on both sides) that must all be equal, after normalisation.")

    @model_validator(mode="after")
    def _distinct(self) -> LinkPass:
        if len(set(self.fields)) != len(self.fields):
            raise ValueError(f"pass {self.name!r} lists a field twice: {self.fields}")
        return self


class PsiLinkParams(StepParams):
    requester: KeySource = Field(description="The requesting side (each hospital the step runs at): table, record id and identifier fields.")
    provider: KeySource = Field(description="The providing side (the data provider the step runs at): table, record id and identifier fields.")
    per_party: dict[str, KeySource] = Field(
        default_factory=dict, description="A party whose table or columns differ from its side's declaration, by party name."
    )
    passes: list[LinkPass] = Field(min_length=1, description="Key combinations in order; each pass links only records no earlier pass linked.")
    reveal: Reveal = Field(
        "requester",
        description="requester: the requester learns its matched records; both: both hold the aligned records; "
        "payload: the requester receives the provider's payload columns for its matches; cardinality: only the count.",
    )
    payload_columns: list[str] = Field(default_factory=list, description="payload only: the provider's numeric or Boolean columns the requester receives.")
    into: str = Field("linked", description="Output table: at the requester its matched rows (plus payload columns); with reveal both also at the provider.")
    keep_unmatched: bool = Field(
        False,
        description="Requester's output: false keeps its matched rows only; true keeps every row, with the link's columns "
        f"(and payload) null where no pass matched and a Boolean `{MATCHED_COLUMN}` column saying which did.",
    )
    duplicates: Literal["error", "skip"] = Field(
        "error",
        description="A key shared by several records of one party cannot tell them apart. error: stop and say so; "
        "skip: leave those records out of that pass (a later pass may link them).",
    )
    fpr: float = Field(1e-9, gt=0.0, lt=1.0, description="ECDH-PSI: probability of any false match in a whole pass (GCS setup).")
    data_structure: DataStructure = Field(
        "auto",
        description="ECDH-PSI setup: gcs (≈5 B per provider record, one core), raw (35 B, exact, built on all cores), bloom, "
        "or auto (gcs when its range allows and the provider's set is at most twice the requester's, else raw).",
    )
    chunk_size: int = Field(DEFAULT_CHUNK, ge=1_000, description="Requester records per PSI request message.")
    max_queries_per_requester: int = Field(
        1_000_000,
        ge=1,
        le=10**9,
        description="The provider's own cap: identifiers one requester may have it evaluate in this step, over "
        "all passes; a larger set or declaration is refused before any evaluation. It bounds enumeration of low-entropy identifiers.",
    )
    workers: int = Field(2, ge=1, le=64, description="Cores to use: threads for ECDH-PSI, processes for the provider's side of labeled PSI; 1 uses none.")

    @model_validator(mode="after")
    def _consistent(self) -> PsiLinkParams:
        names = [p.name for p in self.passes]
        if len(set(names)) != len(names):
            raise ValueError(f"pass names must be unique; got {names}")
        mode = mode_for(self.reveal)
        if not mode.requester_learns_matches and len(self.passes) != 1:
            raise ValueError(f"reveal {self.reveal} takes exactly one pass: several passes must know which records matched to exclude them from later passes")
        if mode.takes_payload and not self.payload_columns:
            raise ValueError(f"reveal {self.reveal} needs payload_columns: the provider's columns the requester receives")
        if not mode.takes_payload and self.payload_columns:
            takers = " or ".join(name for name, other in MODES.items() if other.takes_payload)
            raise ValueError(f"payload_columns only apply to reveal {takers}, not {self.reveal!r}")
        if self.into in {self.requester.table, self.provider.table}:
            raise ValueError(f"into {self.into!r} would overwrite a linked table; name the output table otherwise")
        if self.keep_unmatched and not mode.requester_learns_matches:
            raise ValueError(f"keep_unmatched needs an output table; reveal {self.reveal} writes none")
        return self

    def source(self, party: str, side: KeySource) -> KeySource:
        return self.per_party.get(party, side)

    def fields_used(self) -> list[str]:
        return list(dict.fromkeys(name for p in self.passes for name in p.fields))
