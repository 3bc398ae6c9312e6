"""reveal both: as requester, then the requester names its matched keys to the provider, so both hold the aligned records."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from workbench.context import StepContext
from workbench.data.link_columns import LINK_ID
from workbench.ledger import Protection
from workbench.steps.psi_link.ecdh import ECDH_MESSAGES, ecdh_session
from workbench.steps.psi_link.engine import Link, link_table
from workbench.steps.psi_link.mode import Messages, PassResult, RevealMode, provider_sizes, queried
from workbench.steps.psi_link.sides import Candidates

if TYPE_CHECKING:  # numpy and polars load where they are used: `workbench validate` reads the contract only
    import numpy as np
    import polars as pl


class BothMode(RevealMode):
    """Each pass is an ECDH-PSI session revealing the intersection to the requester, then a reveal-back of the matched keys."""

    reveal: ClassVar[str] = "both"
    protocol: ClassVar[str] = "ecdh"
    messages: ClassVar[Messages] = {**ECDH_MESSAGES, "psi.reveal": (Protection.NONE, True), "psi.confirm": (Protection.NONE, True)}
    provider_learns_matches: ClassVar[bool] = True

    def run_pass(self, ctx: StepContext, link: Link, pass_name: str, requester: Candidates, provider: Candidates) -> PassResult:
        found = ecdh_session(self.params, link, requester.keys, provider.keys, reveal=True)
        assert found.indices is not None
        return self._reveal_back(found.indices, requester, provider, link, ctx.rng(link.requester.party, link.provider.party, pass_name))

    def _reveal_back(self, matched: list[int], requester: Candidates, provider: Candidates, link: Link, rng: np.random.Generator) -> PassResult:
        """The requester names its matched keys under fresh link ids; the provider keeps those it holds.

        The provider's check also removes any false match of a GCS setup. Link ids
        are numbered in a random order, so they say nothing about either table's order.
        """
        first = len(link.requester_links)
        order = rng.permutation(len(matched)).tolist()
        named = {first + position: matched[i] for position, i in enumerate(order)}
        received = json.loads(link.to_provider("psi.reveal", json.dumps([[number, requester.keys[i]] for number, i in named.items()]).encode()))
        # at the provider: its own rows for the keys it holds
        row_of = dict(zip(provider.keys, provider.rows.tolist()))
        accepted = {int(number): row_of[key] for number, key in received if key in row_of}
        rejected = [int(number) for number, _ in received if int(number) not in accepted]
        # back at the requester
        dropped = set(json.loads(link.to_requester("psi.confirm", json.dumps(rejected).encode())))
        kept = {number: i for number, i in named.items() if number not in dropped}
        return PassResult(len(kept), {int(requester.rows[i]): number for number, i in kept.items()}, {row: number for number, row in accepted.items()})

    def requester_columns(self) -> list[str]:
        return [LINK_ID]

    def requester_values(self, link: Link, rows: Sequence[int]) -> list[pl.Series]:
        import polars as pl

        return [pl.Series(LINK_ID, [link.requester_links[r][1] for r in rows], dtype=pl.Int64)]

    def provider_columns(self) -> list[str]:
        return [LINK_ID]

    def provider_table(self, links: Sequence[Link]) -> pl.DataFrame:
        """The provider's linked rows for every requester, each requester's in link id order."""
        import polars as pl

        frames = []
        for link in links:
            ordered = sorted(link.provider_links.items(), key=lambda item: item[1][1])
            rows = [row for row, _ in ordered]
            frames.append(
                link_table(link.provider.frame, rows, link.requester.party, [name for _, (name, _) in ordered]).with_columns(
                    pl.Series(LINK_ID, [number for _, (_, number) in ordered], dtype=pl.Int64)
                )
            )
        return pl.concat(frames)

    @classmethod
    def requester_learned(cls, requester: str, summary: Mapping[str, Any]) -> str:
        s, prov = summary, summary["provider"]
        return (
            f"{requester} learned which {s['linked']} of its {s['records']} records {prov} also holds, aligned with {prov}'s records by link_id, "
            f"and the size of {prov}'s key set in each pass ({provider_sizes(s)})."
        )

    @classmethod
    def provider_learned(cls, requester: str, summary: Mapping[str, Any]) -> str:
        s, prov = summary, summary["provider"]
        return (
            f"{prov} learned the number of records {requester} queried in each pass ({queried(s)}) and which of its own records they match: "
            f"the {s['linked']} keys {requester} revealed, under their link_id."
        )
