"""Parties and their private stores, and the boundary between them.

Every organisation in a recipe is a party with a private store. A step sees
only the stores of the parties it runs at (a `ScopedParties` view); anything
else must travel through the ledger. The guard is an API boundary inside one
process, not a sandbox: it keeps honest code honest and makes a step that
reaches across a boundary fail loudly in tests, which is what a research tool
needs. Real isolation comes from the deployment runtime, where each party is
its own process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # annotations only: `workbench validate` must not load polars
    import polars as pl

COORDINATOR = "coordinator"
"""The researcher running the workbench: receives only what parties publish (summaries, metrics)."""


class Role(StrEnum):
    """What a party is in the federation; steps pick their default parties by role."""

    HOSPITAL = "hospital"
    DATA_PROVIDER = "data_provider"
    AGGREGATOR = "aggregator"
    KEY_HOLDER = "key_holder"
    CLINIC = "clinic"
    """A care site outside the consortium: it trained nothing and may query a model (`encrypted_inference`); no training
    step runs at it by default."""


class PartyBoundaryError(WorkbenchError, PermissionError):
    """A step asked for the store of a party it does not run at."""


class MissingItemError(WorkbenchError, KeyError):
    """A step asked a party's store for a table or object it does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PartyStore:
    """One party's private data: named tables (polars frames) and named objects (models, keys)."""

    def __init__(self, name: str, role: Role, on_read: Callable[[str, str, pl.DataFrame], None] | None = None) -> None:
        self.name = name
        self.role = role
        self.on_read = on_read
        """Told (party, table, frame) whenever a table is opened: the party's audit trail (`governance.oversight`)."""
        self._tables: dict[str, pl.DataFrame] = {}
        self._objects: dict[str, Any] = {}

    def table(self, name: str) -> pl.DataFrame:
        if name not in self._tables:
            held = ", ".join(sorted(self._tables)) or "none"
            raise MissingItemError(f"party {self.name!r} holds no table {name!r} (tables it holds: {held})")
        if self.on_read is not None:
            self.on_read(self.name, name, self._tables[name])
        return self._tables[name]

    def put_table(self, name: str, frame: pl.DataFrame) -> None:
        self._tables[name] = frame

    def tables(self) -> dict[str, pl.DataFrame]:
        return dict(self._tables)

    def get(self, name: str) -> Any:
        if name not in self._objects:
            held = ", ".join(sorted(self._objects)) or "none"
            raise MissingItemError(
                f"party {self.name!r} holds no object {name!r} (objects it holds: {held}); did an earlier step that makes it run at this party?"
            )
        return self._objects[name]

    def put(self, name: str, value: Any) -> None:
        self._objects[name] = value

    def has(self, name: str) -> bool:
        return name in self._objects


class ScopedParties:
    """The stores a step may touch: those of the parties it runs at, and no others."""

    def __init__(self, stores: dict[str, PartyStore], allowed: Iterable[str], step: str) -> None:
        allowed = list(allowed)
        self._stores = {name: stores[name] for name in allowed}
        self._step = step

    def __getitem__(self, party: str) -> PartyStore:
        if party not in self._stores:
            raise PartyBoundaryError(
                f"step {self._step!r} runs at {', '.join(self._stores) or 'no party'} "
                f"and may not read the store of {party!r}; send data through the ledger instead"
            )
        return self._stores[party]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stores)

    def __len__(self) -> int:
        return len(self._stores)

    def __contains__(self, party: object) -> bool:
        return party in self._stores
