"""What a psi_link step needs and writes, as data for `workbench validate`: from the declarations and the reveal mode's.

A party with its own declaration (per_party) may read other tables or columns than its
role's, which a contract by role cannot say; with per_party the run checks the inputs.
"""

from __future__ import annotations

from workbench.contracts import Columns, Contract, Randomness, RoleNeed
from workbench.data.normalize import KeySource
from workbench.parties import Role
from workbench.steps.psi_link.engine import output_columns
from workbench.steps.psi_link.modes import mode_for
from workbench.steps.psi_link.params import PsiLinkParams


def link_contract(p: PsiLinkParams) -> Contract:
    """Hospitals and one data provider; each side's id and identifier columns; the `into` tables the mode writes, with its columns."""
    requester_adds, provider_adds = output_columns(mode_for(p.reveal)(p), p.keep_unmatched)
    payload = (
        (Columns(p.provider.table, tuple(p.payload_columns), Role.DATA_PROVIDER, ("payload_columns",), ("provider", "table")),) if p.payload_columns else ()
    )
    reads = (
        ()
        if p.per_party
        else (*_reads(p.requester, Role.HOSPITAL, "requester", p.fields_used()), *_reads(p.provider, Role.DATA_PROVIDER, "provider", p.fields_used()), *payload)
    )
    adds = tuple(
        Columns(p.into, tuple(columns), role, ("into",), copies=side.table)
        for columns, role, side in ((requester_adds, Role.HOSPITAL, p.requester), (provider_adds, Role.DATA_PROVIDER, p.provider))
        if columns is not None
    )
    return Contract(needs=(RoleNeed(Role.HOSPITAL), RoleNeed(Role.DATA_PROVIDER, 1, 1)), reads=reads, adds=adds, randomness=Randomness.SEED_AND_SYSTEM)


def _reads(side: KeySource, role: Role, where: str, fields: list[str]) -> tuple[Columns, ...]:
    """The columns one side's declaration reads: its record id (when it names one) and the column of every field a pass uses."""
    table_at = (where, "table")
    ids = (Columns(side.table, (side.id_column,), role, (where, "id_column"), table_at),) if side.id_column is not None else ()
    columns = tuple(dict.fromkeys(side.fields[name].column for name in fields if name in side.fields))
    return (*ids, Columns(side.table, columns, role, (where, "fields"), table_at))
