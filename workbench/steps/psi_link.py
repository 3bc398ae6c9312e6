"""Record linkage by private set intersection: each hospital finds the vendor's records of its patients.

A link runs between a requester (a hospital) and a provider (the data
provider) in ordered passes; each pass is one PSI session, with fresh keys,
on one combination of normalised identifier fields, over the requester's
records that no earlier pass linked. Links are the union over passes: a typo in
one field is survived by a pass that leaves that field out, without fuzzy
matching in the clear.

What each side learns is set by `reveal` (docs/psi.md has the protocols):

* requester   - the requester learns which of its records matched (ECDH-PSI).
* both        - as requester, then the requester names the matched keys to the
                provider: both hold the aligned records under a shared link_id.
* payload     - labeled PSI: the requester gets the provider's payload columns
                for its matched records; the provider learns only set sizes.
* cardinality - the requester learns only how many records match (one pass).

Every message goes through the ledger. Output tables are written only after
every pair has linked, so a failure leaves every store as it was.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.context import StepContext
from workbench.crypto.evaluation_budget import EvaluationBudget, EvaluationBudgetError
from workbench.crypto.labeled_psi import LabeledPsiReceiver, LabeledPsiSender, run_labeled_psi
from workbench.crypto.psi import DEFAULT_CHUNK, DataStructure, PsiClient, PsiServer, Send, run_psi
from workbench.data.normalize import KeySource, LinkageInputError, check_same_canonical_forms, composite_key, normalized_fields
from workbench.data.payload import PayloadCodec
from workbench.ledger import Protection
from workbench.parties import Role
from workbench.report.blocks import Block, Table, Text
from workbench.steps.base import Step, StepParams, register

Reveal = Literal["requester", "both", "payload", "cardinality"]
LINK_COLUMNS = ("link_party", "link_pass", "link_id")
MATCHED_COLUMN = "matched"
"""With keep_unmatched: True on the requester's rows some pass linked, so a model can tell filled-in payload from received."""
TRUTH = "ground_truth"
"""Key of the step's results that holds scores against the generator's truth (computed by the simulation, sent by no party)."""

_MESSAGES: dict[tuple[str, str], tuple[Protection, bool]] = {
    # (protocol, kind) -> (protection, row_level). Blinded or encrypted per-record messages are row-level but protected.
    ("ecdh", "psi.request"): (Protection.BLINDED, True),
    ("ecdh", "psi.setup"): (Protection.BLINDED, True),
    ("ecdh", "psi.response"): (Protection.BLINDED, True),
    ("ecdh", "psi.reveal"): (Protection.NONE, True),
    ("ecdh", "psi.confirm"): (Protection.NONE, True),
    ("labeled", "psi.schema"): (Protection.NONE, False),
    ("labeled", "psi.setup"): (Protection.NONE, False),
    ("labeled", "psi.payload"): (Protection.BLINDED, True),
    ("labeled", "psi.request"): (Protection.BLINDED, True),
    ("labeled", "psi.response"): (Protection.BLINDED, True),
}


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
        False, description="Requester's output: false keeps its matched rows only; true keeps every row, with the link's columns "
        f"(and payload) null where no pass matched and a Boolean `{MATCHED_COLUMN}` column saying which did.")
    duplicates: Literal["error", "skip"] = Field(
        "error",
        description="A key shared by several records of one party cannot tell them apart. error: stop and say so; "
        "skip: leave those records out of that pass (a later pass may link them).",
    )
    fpr: float = Field(1e-9, gt=0.0, lt=1.0, description="ECDH-PSI: probability of any false match in a whole pass (GCS setup).")
    data_structure: DataStructure = Field(
        "auto", description="ECDH-PSI setup: gcs (≈5 B per provider record, one core), raw (35 B, exact, built on all cores), bloom, "
        "or auto (gcs when its range allows and the provider's set is at most twice the requester's, else raw).")
    chunk_size: int = Field(DEFAULT_CHUNK, ge=1_000, description="Requester records per PSI request message.")
    max_queries_per_requester: int = Field(
        1_000_000, ge=1, le=10**9, description="The provider's own cap: identifiers one requester may have it evaluate in this step, over "
        "all passes; a larger set or declaration is refused before any evaluation. It bounds enumeration of low-entropy identifiers.")
    workers: int = Field(2, ge=1, le=64, description="Cores to use: threads for ECDH-PSI, processes for the provider's side of labeled PSI; 1 uses none.")

    @model_validator(mode="after")
    def _consistent(self) -> PsiLinkParams:
        names = [p.name for p in self.passes]
        if len(set(names)) != len(names):
            raise ValueError(f"pass names must be unique; got {names}")
        if self.reveal == "cardinality" and len(self.passes) != 1:
            raise ValueError("reveal cardinality takes exactly one pass: several passes must know which records matched to exclude them from later passes")
        if self.reveal == "payload" and not self.payload_columns:
            raise ValueError("reveal payload needs payload_columns: the provider's columns the requester receives")
        if self.reveal != "payload" and self.payload_columns:
            raise ValueError(f"payload_columns only apply to reveal payload, not {self.reveal!r}")
        if self.into in {self.requester.table, self.provider.table}:
            raise ValueError(f"into {self.into!r} would overwrite a linked table; name the output table otherwise")
        if self.keep_unmatched and self.reveal == "cardinality":
            raise ValueError("keep_unmatched needs an output table; reveal cardinality writes none")
        return self

    def source(self, party: str, side: KeySource) -> KeySource:
        return self.per_party.get(party, side)

    def fields_used(self) -> list[str]:
        return list(dict.fromkeys(name for p in self.passes for name in p.fields))


@dataclass(frozen=True)
class _Side:
    """One party's records, as the party itself sees them: its table and its key per pass."""

    party: str
    source: KeySource
    frame: pl.DataFrame
    keys: pl.DataFrame
    """One column per pass: the normalised composite key, null where the record has none or (skip) it is ambiguous."""
    ambiguous: dict[str, int]
    without_key: dict[str, int]

    def candidates(self, pass_name: str, linked: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
        """Row numbers and keys of the records that take part in a pass: those with a key, not already linked."""
        keys = self.keys.get_column(pass_name)
        usable = keys.is_not_null().to_numpy()
        if linked is not None:
            usable &= ~linked
        rows = np.flatnonzero(usable)
        return rows, keys.gather(rows).to_list()


@dataclass
class _PassOutcome:
    name: str
    fields: list[str]
    queried: int
    offered: int
    linked: int
    pairs: list[tuple[int, int]]
    """(requester row, provider row) of each new link: the provider row is the simulation's bookkeeping for scoring, known to no party
    unless reveal is both."""


@dataclass
class _PairOutcome:
    requester: _Side
    provider: _Side
    passes: list[_PassOutcome] = field(default_factory=list)
    link_pass: dict[int, str] = field(default_factory=dict)
    link_id: dict[int, int] = field(default_factory=dict)
    payloads: dict[int, bytes] = field(default_factory=dict)
    provider_links: dict[int, tuple[int, str]] = field(default_factory=dict)
    """reveal both, at the provider: its row -> (link id, pass)."""
    codec: PayloadCodec | None = None
    count: int = 0
    budget: EvaluationBudget | None = None
    """The provider's evaluation cap for this requester, shared by every pass."""


@register
class PsiLink(Step[PsiLinkParams]):
    """Links each hospital's records with the data provider's by PSI on normalised identifiers, in passes."""

    kind = "psi_link"
    Params = PsiLinkParams
    roles = (Role.HOSPITAL, Role.DATA_PROVIDER)

    def run(self, ctx: StepContext) -> None:
        requesters, provider = self._pairs(ctx)
        p = self.params
        # Every party checks its own input before any message is sent.
        prov = self._side(ctx, provider, p.provider)
        sides = [self._side(ctx, requester, p.requester) for requester in requesters]
        for req in sides:
            check_same_canonical_forms((req.party, req.source), (provider, prov.source), p.fields_used())
            self._check_output_columns(req, prov)
        codec = PayloadCodec.for_frame(prov.frame, p.payload_columns, f"party {provider!r}, table {prov.source.table!r}") if p.payload_columns else None
        outcomes = []
        with self._executor() as executor:
            for number, req in enumerate(sides):
                try:
                    outcomes.append(self._link(ctx, req, prov, codec, executor, progress=(number * len(p.passes), len(sides) * len(p.passes))))
                except EvaluationBudgetError as error:
                    raise LinkageInputError(str(error)) from None
        self._commit(ctx, outcomes)
        self._publish(ctx, outcomes)
        scores = {o.requester.party: score for o in outcomes if (score := _score(ctx, o)) is not None}
        if scores:
            ctx.results[TRUTH] = scores

    # --- who links with whom --------------------------------------------------------------------

    def _pairs(self, ctx: StepContext) -> tuple[list[str], str]:
        requesters, providers = ctx.parties_with(Role.HOSPITAL), ctx.parties_with(Role.DATA_PROVIDER)
        if len(providers) != 1 or not requesters:
            raise LinkageInputError(
                f"psi_link links hospitals with one data provider; it runs at {', '.join(ctx.parties)} "
                f"({len(requesters)} hospital(s), {len(providers)} data provider(s)): list one provider and its hospitals in `at:`"
            )
        unknown = sorted(set(self.params.per_party) - set(ctx.parties))
        if unknown:
            raise LinkageInputError(f"per_party names {', '.join(map(repr, unknown))}, which this step does not run at ({', '.join(ctx.parties)})")
        return requesters, providers[0]

    @contextmanager
    def _executor(self) -> Iterator[Executor | None]:
        """Worker processes for the provider's labeled-PSI work (the OPRF binding holds the GIL, so threads would not help)."""
        if self.params.reveal != "payload" or self.params.workers < 2 or not spawn_can_start():
            yield None
            return
        pool = ProcessPoolExecutor(self.params.workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            yield pool
        finally:
            pool.shutdown(cancel_futures=True)

    # --- each party's keys ------------------------------------------------------------------------

    def _side(self, ctx: StepContext, party: str, declared: KeySource) -> _Side:
        p = self.params
        source = p.source(party, declared)
        where = f"party {party!r}, table {source.table!r}"
        frame = ctx.store(party).table(source.table)
        if frame.height == 0:
            raise LinkageInputError(f"{where} has no rows: there is nothing to link")
        if source.id_column is not None:
            if source.id_column not in frame.columns:
                raise LinkageInputError(f"{where}: id_column {source.id_column!r} is not in the table; it has {', '.join(frame.columns)}")
            repeated = frame.height - frame.get_column(source.id_column).n_unique()
            if repeated:
                raise LinkageInputError(
                    f"{where}: {repeated} record(s) repeat an id in column {source.id_column!r}; each record must appear once, so remove the duplicates first"
                )
        fields = normalized_fields(frame, source, p.fields_used(), where)
        keys = fields.select(**{lp.name: composite_key(lp.fields) for lp in p.passes})
        ambiguous, without_key = {}, {}
        for lp in p.passes:
            column = keys.get_column(lp.name)
            shared = column.is_duplicated() & column.is_not_null()
            ambiguous[lp.name] = int(shared.sum())
            without_key[lp.name] = int(column.is_null().sum())
            if ambiguous[lp.name] and p.duplicates == "error":
                raise LinkageInputError(
                    f"{where}: {ambiguous[lp.name]} records share their key in pass {lp.name!r} "
                    f"(columns {', '.join(source.fields[f].column for f in lp.fields)}), so the key cannot tell them apart; "
                    "add a field to the pass, remove duplicate records, or set duplicates: skip to leave them out of that pass"
                )
            keys = keys.with_columns(pl.when(shared).then(None).otherwise(column).alias(lp.name))
        return _Side(party, source, frame, keys, ambiguous, without_key)

    # --- one requester with the provider --------------------------------------------------------

    def _link(self, ctx: StepContext, req: _Side, prov: _Side, codec: PayloadCodec | None, executor: Executor | None,
              progress: tuple[int, int]) -> _PairOutcome:
        """Every pass between one requester and the provider; the links stay with the step until all pairs are done."""
        p = self.params
        outcome = _PairOutcome(req, prov, budget=EvaluationBudget(p.max_queries_per_requester, req.party, prov.party))
        protocol = "labeled" if p.reveal == "payload" else "ecdh"
        to_provider, to_requester = _channel(ctx, protocol, req.party, prov.party), _channel(ctx, protocol, prov.party, req.party)
        if codec is not None:
            outcome.codec = PayloadCodec.from_schema(to_requester("psi.schema", codec.schema()))
        req_linked, prov_linked = np.zeros(req.frame.height, dtype=bool), np.zeros(prov.frame.height, dtype=bool)
        for number, lp in enumerate(p.passes):
            ctx.progress(progress[0] + number, progress[1], f"{req.party} × {prov.party}: pass {lp.name}")
            req_rows, req_keys = req.candidates(lp.name, req_linked)
            prov_rows, prov_keys = prov.candidates(lp.name, prov_linked if p.reveal == "both" else None)
            if not len(req_rows) or not len(prov_rows):
                outcome.passes.append(_PassOutcome(lp.name, lp.fields, len(req_rows), len(prov_rows), 0, []))
                continue
            prov_row_of = dict(zip(prov_keys, prov_rows.tolist()))  # the provider's index of its own keys (also the simulation's, to score)
            if p.reveal == "payload":
                matched = self._payload_pass(req_rows, req_keys, prov_rows, prov_keys, outcome, executor, to_provider, to_requester)
                learned = len(matched)
            else:
                matched, learned = self._ecdh_pass(ctx, req_rows, req_keys, prov_keys, prov_row_of, lp.name, outcome, to_provider, to_requester)
            pairs = [(int(req_rows[i]), prov_row_of[req_keys[i]]) for i in matched if req_keys[i] in prov_row_of]
            if p.reveal != "cardinality":
                req_linked[req_rows[matched]] = True
                outcome.link_pass.update({int(req_rows[i]): lp.name for i in matched})
            if p.reveal == "both":
                prov_linked[[row for _, row in pairs]] = True
            outcome.count += learned
            outcome.passes.append(_PassOutcome(lp.name, lp.fields, len(req_rows), len(prov_rows), learned, pairs))
        ctx.progress(progress[0] + len(p.passes), progress[1], f"{req.party} × {prov.party}: {outcome.count} linked")
        if outcome.count == 0:
            raise LinkageInputError(
                f"no record of party {req.party!r} matched party {prov.party!r} in any pass ({', '.join(lp.name for lp in p.passes)}); "
                "check that both sides declare the same fields with each party's own columns and formats, and that the tables cover the same people"
            )
        return outcome

    def _ecdh_pass(self, ctx: StepContext, req_rows: np.ndarray, req_keys: list[str], prov_keys: list[str], prov_row_of: dict[str, int],
                   pass_name: str, outcome: _PairOutcome, to_provider: Send, to_requester: Send) -> tuple[list[int], int]:
        """One ECDH-PSI session: the requester's matched positions, and the count it learned."""
        p = self.params
        reveal = p.reveal != "cardinality"
        found = run_psi(
            PsiClient(req_keys, reveal_intersection=reveal, chunk_size=p.chunk_size, parallelism=p.workers),
            PsiServer(prov_keys, reveal_intersection=reveal, fpr=p.fpr, data_structure=p.data_structure, chunk_size=p.chunk_size,
                      parallelism=p.workers, budget=outcome.budget),
            to_provider, to_requester, workers=p.workers,
        )
        if found.indices is None:  # cardinality: no party knows the links; the simulation finds them to score the count
            return [i for i, key in enumerate(req_keys) if key in prov_row_of], found.size
        if p.reveal == "both":
            rng = ctx.rng(outcome.requester.party, outcome.provider.party, pass_name)
            matched = self._reveal_back(found.indices, req_rows, req_keys, prov_row_of, pass_name, outcome, rng, to_provider, to_requester)
            return matched, len(matched)
        return found.indices, found.size

    def _check_output_columns(self, req: _Side, prov: _Side) -> None:
        """The output tables add link columns (and payload columns); refuse before any message if a name is taken."""
        p = self.params
        added = [*LINK_COLUMNS, *p.payload_columns, *([MATCHED_COLUMN] if p.keep_unmatched else [])]
        outputs = [] if p.reveal == "cardinality" else [(req, added)]
        if p.reveal == "both":
            outputs.append((prov, list(LINK_COLUMNS)))
        for side, added in outputs:
            clash = sorted(set(added) & set(side.frame.columns))
            if clash:
                raise LinkageInputError(
                    f"party {side.party!r}, table {side.source.table!r} already has column(s) {', '.join(clash)}, which the linked table "
                    f"{p.into!r} adds; rename them{' or choose other payload_columns' if p.payload_columns else ''}"
                )

    def _payload_pass(self, req_rows: np.ndarray, req_keys: list[str], prov_rows: np.ndarray, prov_keys: list[str], outcome: _PairOutcome,
                      executor: Executor | None, to_provider: Send, to_requester: Send) -> list[int]:
        """Labeled PSI: the provider seals its payload rows under keys only a matching requester key can derive."""
        assert outcome.codec is not None
        payloads = outcome.codec.encode(_rows(outcome.provider.frame, prov_rows.tolist()))
        sender = LabeledPsiSender(prov_keys, payloads, executor=executor, parallelism=self.params.workers, budget=outcome.budget)
        opened = run_labeled_psi(LabeledPsiReceiver(req_keys), sender, to_provider, to_requester)
        outcome.payloads.update({int(req_rows[i]): payload for i, payload in opened.items()})
        return sorted(opened)

    def _reveal_back(self, matched: list[int], req_rows: np.ndarray, req_keys: list[str], prov_row_of: dict[str, int], pass_name: str,
                     outcome: _PairOutcome, rng: np.random.Generator, to_provider: Send, to_requester: Send) -> list[int]:
        """reveal both: the requester names its matched keys under fresh link ids; the provider keeps those it holds.

        The provider's check also removes any false match of a GCS setup. Link ids
        are numbered in a random order, so they say nothing about either table's order.
        """
        first = len(outcome.link_id)
        order = rng.permutation(len(matched)).tolist()
        named = {first + position: matched[i] for position, i in enumerate(order)}
        received = json.loads(to_provider("psi.reveal", json.dumps([[link, req_keys[i]] for link, i in named.items()]).encode()))
        # at the provider: its own rows for the keys it holds
        accepted = {int(link): prov_row_of[key] for link, key in received if key in prov_row_of}
        rejected = [int(link) for link, _ in received if int(link) not in accepted]
        outcome.provider_links.update({row: (link, pass_name) for link, row in accepted.items()})
        # back at the requester
        dropped = set(json.loads(to_requester("psi.confirm", json.dumps(rejected).encode())))
        kept = {link: i for link, i in named.items() if link not in dropped}
        outcome.link_id.update({int(req_rows[i]): link for link, i in kept.items()})
        return sorted(kept.values())

    # --- results ----------------------------------------------------------------------------------

    def _commit(self, ctx: StepContext, outcomes: list[_PairOutcome]) -> None:
        """Write every output table at once, after all pairs have linked: a failure before this leaves the stores as they were."""
        p = self.params
        if p.reveal == "cardinality":
            return
        provider_frames = []
        for o in outcomes:
            rows = sorted(o.link_pass)
            linked = _rows(o.requester.frame, rows).with_columns(
                link_party=pl.lit(o.provider.party), link_pass=pl.Series([o.link_pass[r] for r in rows], dtype=pl.Utf8),
            )
            if p.reveal == "both":
                linked = linked.with_columns(link_id=pl.Series([o.link_id[r] for r in rows], dtype=pl.Int64))
                prov_rows = sorted(o.provider_links, key=lambda r: o.provider_links[r][0])
                provider_frames.append(_rows(o.provider.frame, prov_rows).with_columns(
                    link_party=pl.lit(o.requester.party),
                    link_pass=pl.Series([o.provider_links[r][1] for r in prov_rows], dtype=pl.Utf8),
                    link_id=pl.Series([o.provider_links[r][0] for r in prov_rows], dtype=pl.Int64),
                ))
            if p.reveal == "payload":
                assert o.codec is not None
                linked = pl.concat([linked, o.codec.decode([o.payloads[r] for r in rows])], how="horizontal")
            if p.keep_unmatched:
                linked = _with_unmatched(o.requester.frame, rows, linked)
            ctx.store(o.requester.party).put_table(p.into, linked)
        if provider_frames:
            ctx.store(outcomes[0].provider.party).put_table(p.into, pl.concat(provider_frames))

    def _publish(self, ctx: StepContext, outcomes: list[_PairOutcome]) -> None:
        """Each party reports counts it knows itself (and what it learned): never a record."""
        p = self.params
        provider: dict[str, Any] = {"reveal": p.reveal, "records": outcomes[0].provider.frame.height, "links": {}}
        for o in outcomes:
            ctx.publish(o.requester.party, {
                "provider": o.provider.party,
                "reveal": p.reveal,
                "records": o.requester.frame.height,
                "linked": o.count,
                "passes": [{
                    "pass": r.name, "fields": r.fields, "queried": r.queried, "linked": r.linked, "provider_set": r.offered,
                    "ambiguous": o.requester.ambiguous[r.name], "without_key": o.requester.without_key[r.name],
                } for r in o.passes],
            })
            assert o.budget is not None
            provider["links"][o.requester.party] = {"evaluations": o.budget.used, "evaluation_cap": o.budget.limit, "passes": [{
                "pass": r.name, "offered": r.offered, "queried": r.queried,
                "ambiguous": o.provider.ambiguous[r.name], "without_key": o.provider.without_key[r.name],
                **({"linked": r.linked} if p.reveal == "both" else {}),
            } for r in o.passes]}
        ctx.publish(outcomes[0].provider.party, provider)

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        requesters = {party: s for party, s in results.items() if party != TRUTH and "provider" in s}
        truth = results.get(TRUTH, {})
        blocks: list[Block] = []
        rows, keys = [], {}
        for party, s in requesters.items():
            scored = {r["pass"]: r for r in truth.get(party, {}).get("passes", [])}
            total = 0
            for r in s["passes"]:
                total += r["linked"]
                keys[r["pass"]] = " + ".join(r["fields"])
                score = scored.get(r["pass"], {})
                rows.append([party, r["pass"], r["queried"], r["provider_set"], r["linked"], total, score.get("precision"), score.get("recall")])
        blocks.append(Table("Linkage per pass", ["requester", "pass", "queried", "provider set", "linked", "linked so far",
                                                  "precision so far", "recall so far"], rows,
                            note="Keys: " + "; ".join(f"{name} = {key}" for name, key in keys.items()) + ". Precision and recall are scored "
                                 "by the simulation against the generator's true links (empty without one)."))
        overall = [[party, s["provider"], s["reveal"], s["records"], s["linked"], truth.get(party, {}).get("true_links"),
                    truth.get(party, {}).get("precision"), truth.get(party, {}).get("recall")] for party, s in requesters.items()]
        blocks.append(Table("Linkage overall", ["requester", "provider", "reveal", "records", "linked", "true links", "precision", "recall"], overall))
        missed = [[party, kind, count] for party, t in truth.items() for kind, count in sorted(t.get("missed_by_noise", {}).items())]
        if missed:
            blocks.append(Table("True links missed, by identifier noise", ["requester", "noise", "missed"], missed))
        blocks.append(Text("What each party learned", disclosure(results)))
        return blocks


def spawn_can_start() -> bool:
    """Spawned workers re-import the parent's __main__ from its file; a script piped to `python -` has none, so such a
    run links in one process instead of failing with a broken pool."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or Path(path).exists()


def _rows(frame: pl.DataFrame, rows: list[int]) -> pl.DataFrame:
    """The given rows, in that order (also when there are none)."""
    return frame.select(pl.all().gather(rows))


def _with_unmatched(frame: pl.DataFrame, rows: list[int], linked: pl.DataFrame) -> pl.DataFrame:
    """Every row of `frame` in its own order, with the columns `linked` adds for `rows` (null elsewhere) and a matched flag."""
    index = "__row__"
    added = linked.select(pl.exclude(frame.columns)).with_columns(pl.Series(index, rows, dtype=pl.UInt32))
    return (frame.with_row_index(index).join(added, on=index, how="left").sort(index)
            .with_columns(pl.col(index).is_in(rows).alias(MATCHED_COLUMN)).drop(index))


def _channel(ctx: StepContext, protocol: str, sender: str, receiver: str) -> Send:
    """send(kind, payload) from one party to the other through the ledger, protected as the protocol's message kind is."""

    def send(kind: str, payload: bytes) -> bytes:
        protection, row_level = _MESSAGES[(protocol, kind)]
        return ctx.send(sender, receiver, kind, payload, protection, row_level=row_level)

    return send


def _score(ctx: StepContext, outcome: _PairOutcome) -> dict[str, Any] | None:
    """Precision and recall per pass (cumulative) and overall against the generator's true links, when there are any.

    The simulation pairs each link with the provider record whose key matched
    (its own bookkeeping: in most reveal modes no party knows that record) and
    compares the pairs with the truth; nothing here is sent or stored by a party.
    """
    req, prov = outcome.requester, outcome.provider
    if req.source.id_column is None or prov.source.id_column is None:
        return None
    req_ids = req.frame.get_column(req.source.id_column).cast(pl.Utf8)
    prov_ids = prov.frame.get_column(prov.source.id_column).cast(pl.Utf8)
    for truth in ctx.ground_truth.values():
        links = getattr(truth, "links", None)
        if not isinstance(links, pl.DataFrame) or not {"patient_id", "person_key"} <= set(links.columns):
            continue
        true = links.filter(pl.col("patient_id").is_in(req_ids.implode()) & pl.col("person_key").is_in(prov_ids.implode()))
        if true.height == 0:
            continue
        true_pairs = set(zip(true["patient_id"].to_list(), true["person_key"].to_list()))
        found: set[tuple[str, str]] = set()
        passes = []
        for r in outcome.passes:
            new = {(req_ids[a], prov_ids[b]) for a, b in r.pairs}
            found |= new
            correct = len(found & true_pairs)
            passes.append({"pass": r.name, "linked": len(new), "correct": len(new & true_pairs),
                           "precision": _ratio(correct, len(found)), "recall": _ratio(correct, len(true_pairs))})
        correct_pairs = found & true_pairs
        missed = true.filter(~pl.struct("patient_id", "person_key").is_in(
            pl.DataFrame(sorted(correct_pairs), schema=["patient_id", "person_key"], orient="row").to_struct().implode()))
        noise = "noise" in missed.columns
        return {
            "true_links": len(true_pairs), "linked": len(found), "correct": len(correct_pairs),
            "precision": _ratio(len(correct_pairs), len(found)), "recall": _ratio(len(correct_pairs), len(true_pairs)),
            "passes": passes,
            "missed_by_noise": {str(kind): int(n) for kind, n in missed.group_by("noise").len().fill_null("none").iter_rows()} if noise else {},
        }
    return None


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def disclosure(results: dict[str, Any]) -> list[str]:
    """One sentence per party on what the step let it learn, from the counts the parties published."""
    statements = []
    provider_summary = next(((party, s) for party, s in results.items() if party != TRUTH and "links" in s), None)
    for party, s in results.items():
        if party == TRUTH or "provider" not in s:
            continue
        prov, sizes = s["provider"], ", ".join(str(r["provider_set"]) for r in s["passes"])
        queried = ", ".join(str(r["queried"]) for r in s["passes"])
        learned = {
            "requester": f"{party} learned which {s['linked']} of its {s['records']} records {prov} also holds, "
                         f"and the size of {prov}'s key set in each pass ({sizes}).",
            "both": f"{party} learned which {s['linked']} of its {s['records']} records {prov} also holds, aligned with {prov}'s records by link_id, "
                    f"and the size of {prov}'s key set in each pass ({sizes}).",
            "payload": f"{party} learned which {s['linked']} of its {s['records']} records {prov} also holds and {prov}'s payload columns for exactly those, "
                       f"and the number of {prov}'s records in each pass ({sizes}); the other records' payloads stay sealed.",
            "cardinality": f"{party} learned only how many of its records {prov} also holds ({s['linked']}) and the size of {prov}'s key set ({sizes}).",
        }[s["reveal"]]
        statements.append(learned)
        statements.append({
            "both": f"{prov} learned the number of records {party} queried in each pass ({queried}) and which of its own records they match: "
                    f"the {s['linked']} keys {party} revealed, under their link_id.",
        }.get(s["reveal"], f"{prov} learned only the number of records {party} queried in each pass ({queried}); nothing about which matched."))
    if provider_summary is not None:
        provider, summary = provider_summary
        statements.extend(f"{provider} evaluated {link['evaluations']} identifiers for {requester}, under its cap of {link['evaluation_cap']} "
                          "per requester (max_queries_per_requester): a larger query would have been refused before any evaluation."
                          for requester, link in summary["links"].items() if "evaluation_cap" in link)
        statements.append("The coordinator received counts only (records, queried, linked per pass); no identifier or record left a party for it.")
    return statements
