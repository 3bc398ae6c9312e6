"""reveal payload: labeled PSI, the requester receives the provider's payload columns for its matched records only.

The provider seals each of its records under a key only a matching requester key
can derive (RFC 9497 VOPRF, HKDF, AES-GCM); it learns only how many keys were
queried. voprf and cryptography load only when a pass runs.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from workbench.context import StepContext
from workbench.data.payload import PayloadCodec
from workbench.ledger import Protection
from workbench.steps.psi_link.engine import Link, rows_of
from workbench.steps.psi_link.mode import Messages, PassResult, RevealMode, provider_sizes
from workbench.steps.psi_link.sides import Candidates, Side

if TYPE_CHECKING:
    import polars as pl

    from workbench.steps.psi_link.params import PsiLinkParams

LABELED_MESSAGES: Messages = {
    "psi.schema": (Protection.NONE, False),
    "psi.setup": (Protection.NONE, False),
    "psi.payload": (Protection.BLINDED, True),
    "psi.request": (Protection.BLINDED, True),
    "psi.response": (Protection.BLINDED, True),
}
"""The payload schema (once per pair), then per pass: the declared set size, the sealed table, blinded keys and their evaluations."""


def spawn_can_start() -> bool:
    """Spawned workers re-import the parent's __main__ from its file; a script piped to `python -` has none, so such a
    run links in one process instead of failing with a broken pool."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or Path(path).exists()


class PayloadMode(RevealMode):
    """Each pass is one labeled-PSI session; the requester's `into` table adds the provider's payload columns for its matches."""

    reveal: ClassVar[str] = "payload"
    protocol: ClassVar[str] = "labeled"
    messages: ClassVar[Messages] = LABELED_MESSAGES
    takes_payload: ClassVar[bool] = True

    def __init__(self, params: PsiLinkParams) -> None:
        super().__init__(params)
        self._codec: PayloadCodec | None = None
        """The provider's encoding of its payload columns."""
        self._received: dict[str, PayloadCodec] = {}
        """Each requester's decoding, from the schema the provider sent it."""
        self._executor: Executor | None = None

    @contextmanager
    def prepared(self, provider: Side) -> Iterator[None]:
        """The provider checks its payload columns, then starts worker processes (the OPRF binding holds the GIL, so threads would not help)."""
        p = self.params
        self._codec = PayloadCodec.for_frame(provider.frame, p.payload_columns, f"party {provider.party!r}, table {provider.source.table!r}")
        if p.workers < 2 or not spawn_can_start():
            yield
            return
        pool = ProcessPoolExecutor(p.workers, mp_context=multiprocessing.get_context("spawn"))
        self._executor = pool
        try:
            yield
        finally:
            self._executor = None
            pool.shutdown(cancel_futures=True)

    def start(self, link: Link) -> None:
        """The provider sends the payload schema (names and dtypes, in the clear): part of the agreement, not of any record."""
        assert self._codec is not None
        self._received[link.requester.party] = PayloadCodec.from_schema(link.to_requester("psi.schema", self._codec.schema()))

    def run_pass(self, ctx: StepContext, link: Link, pass_name: str, requester: Candidates, provider: Candidates) -> PassResult:
        from workbench.crypto.labeled_psi import LabeledPsiReceiver, LabeledPsiSender, run_labeled_psi

        assert self._codec is not None
        payloads = self._codec.encode(rows_of(link.provider.frame, provider.rows.tolist()))
        sender = LabeledPsiSender(provider.keys, payloads, executor=self._executor, parallelism=self.params.workers, budget=link.budget)
        opened = run_labeled_psi(LabeledPsiReceiver(requester.keys), sender, link.to_provider, link.to_requester)
        return PassResult(len(opened), {int(requester.rows[i]): payload for i, payload in sorted(opened.items())})

    def requester_columns(self) -> list[str]:
        return list(self.params.payload_columns)

    def received_columns(self) -> list[str]:
        return self.requester_columns()

    def requester_values(self, link: Link, rows: Sequence[int]) -> list[pl.Series]:
        return self._received[link.requester.party].decode([link.requester_links[r][1] for r in rows]).get_columns()

    @classmethod
    def requester_learned(cls, requester: str, summary: Mapping[str, Any]) -> str:
        s, prov = summary, summary["provider"]
        return (
            f"{requester} learned which {s['linked']} of its {s['records']} records {prov} also holds and {prov}'s payload columns for exactly those, "
            f"and the number of {prov}'s records in each pass ({provider_sizes(s)}); the other records' payloads stay sealed."
        )
