"""The one protocol every aggregation kind implements, and the registry from the recipe's `aggregation:` to it.

A kind answers, for one federated plan, every question whose answer depends on how updates are combined:
what a site does to its feature moments and its update before sending them, what the aggregator does to
combine them (and whether it can read the result), what a helper party such as a key holder does, what
the ledger records for each message, what the final model is and who decrypts it, and what the report says.
Everything else (the Flower app, the runtimes, the strategies, the step) asks the kind and never its name.

Kinds import Flower and TenSEAL inside the methods that use them, so that a recipe validates without either.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from workbench.errors import WorkbenchError
from workbench.fl.strategies import STRATEGIES
from workbench.ledger import Protection
from workbench.models.standardize import Standardizer
from workbench.parties import Role

if TYPE_CHECKING:
    import numpy as np
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

    from workbench.context import StepContext
    from workbench.fl.plan import FLPlan

REQUEST_KINDS = {"query": "fl.stats_request", "train": "fl.model", "evaluate": "fl.model"}
"""The ledger's kind of each Flower message type the aggregator sends..."""
REPLY_KINDS = {"query": "fl.stats", "train": "fl.update", "evaluate": "fl.eval_metrics"}
"""... and of the replies (a kind may rename some, `Aggregation.label`)."""
NodeConfig = Mapping[str, Any]
"""A node's own configuration: which party it is and where its files are (Flower's node config)."""
Ask = Callable[[str, dict[str, Any], str], "RecordDict"]
"""The aggregator asks a helper party (by name) a request and gets its answer; the third argument says, for the error,
what the helper failed to do."""
AskSites = Callable[[Mapping[str, dict[str, Any]], str], dict[str, "RecordDict"]]
"""The aggregator asks sites (by name) one request each, all at once, and gets the answers of those that answered within
the node timeout, by site: a silent site has dropped out, which a kind may survive, and so has a site whose node Flower
reports unavailable. Only a site's own refusal (its ClientApp raised, e.g. a protocol check) fails the run, named after
the second argument (what the sites were asked to do)."""
ROUND_RECORD = "round"
"""The config record of a training message that holds what the kind sends that one site (`Aggregation.train_requests`)."""
PROTOCOL_OP = "aggregation-op"
"""A query whose config holds this entry is a step of the kind's own protocol (`Aggregation.serve_site`), not the
statistics query; the config's `aggregation` entry names the kind."""
Aggregated = tuple["ArrayRecord | None", "MetricRecord | None"]


class UpdateSight(StrEnum):
    """What the aggregator reads in the clear of the sites' updates: what an update-leakage audit attacks."""

    EACH = "each site's update"
    """Every site's update, and every site's feature moments (so each site's mean record)."""
    AVERAGE = "the weighted average of the sites' updates, never one site's"
    """The average of the updates and the pooled moments only."""
    NOTHING = "ciphertexts only: no site's update and no average"


class AggregationError(WorkbenchError, ValueError):
    """A recipe asks an aggregation kind for what it cannot do (its keys missing, a strategy it cannot serve)."""


class FlowerAggregate(Protocol):
    """Flower's strategy, as a kind hands it what it may average (workbench.fl.strategy implements it)."""

    def average(self, replies: list[Message]) -> Aggregated:
        """Flower averages the sites' plain updates (by num-examples), then takes its own server step."""

    def step_from(self, aggregate: np.ndarray) -> Aggregated:
        """Flower takes its server step from a weighted average computed by the kind (e.g. decrypted)."""

    @property
    def server_round(self) -> int:
        """The round being combined."""

    def drop(self, sites: Sequence[str]) -> None:
        """Count sites as dropped out of this round, though their update may be in it (they vanished while the kind
        still needed them, e.g. before unmasking)."""


@dataclass(frozen=True)
class PooledMoments:
    """The federated statistics as the aggregator ends with them: plain (a standardizer and the row count), or only
    `encrypted` (the sites' summed moments, which the sites decrypt)."""

    standardizer: Standardizer | None
    rows: float | None
    encrypted: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class FinalAggregate:
    """What the aggregator holds at the end: the model and standardization in the clear, or empty lists and only
    ciphertexts for a site to decrypt (`encrypted_params`, `encrypted_moments`)."""

    params: list[float]
    center: list[float]
    scale: list[float]
    encrypted_params: list[bytes] = field(default_factory=list)
    encrypted_moments: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class AggregatorEnd:
    """What the aggregator combines with: its key material as loaded (None when it needs none), a way to ask helpers and
    a way to run a step of the kind's own protocol with the sites."""

    key: Any
    ask: Ask
    ask_sites: AskSites


@dataclass(frozen=True)
class SiteNode:
    """A site as its ClientApp sees it while answering one message: its node config (which party, where its files
    are), its node state (Flower's `Context.state`, kept by every runtime between the messages of one run and never
    sent), and the config record of the message it answers."""

    config: NodeConfig
    state: RecordDict
    request: ConfigRecord
    """The statistics query's or a protocol step's config; for training, the site's own record (ROUND_RECORD)."""

    @property
    def party(self) -> str:
        return str(self.config["party"])


class Aggregation(ABC):
    """How one plan combines the sites' updates; site, aggregator and helper build the same one from the plan."""

    name: ClassVar[str]
    """The recipe's `aggregation:` value."""
    title: ClassVar[str]
    """How the report names the kind next to others, e.g. "plain updates"."""
    update_protection: ClassVar[Protection]
    """What the ledger records for a site's update; a published summary names its kind by it (`for_summary`)."""
    exact: ClassVar[bool] = True
    """Whether the model equals plain FedAvg's bit for bit; False: to the kind's precision (CKKS noise)."""
    fresh_randomness: ClassVar[bool] = False
    """Whether messages carry randomness drawn afresh each run (keys, encryption, masks), so their bytes differ run to run."""
    needs_keys: ClassVar[tuple[Role, ...]] = ()
    """Roles at which an earlier `ckks_keys` step must have provisioned keys (the step's contract)."""
    reads_updates: ClassVar[UpdateSight]
    """What the aggregator reads of the updates in the clear (the audit attacks exactly that)."""
    site_metrics: ClassVar[tuple[str, ...]] = ()
    """Training metrics a site reports under this kind besides its loss (e.g. how many values it clipped), kept per round."""
    hides_updates: ClassVar[str | None] = None
    """Why the aggregator never reads a site's update under this kind, and what to use instead; None if it reads them.
    Client-level DP (`dp.level: client`) has the aggregator clip each update, so a kind that hides them refuses it."""

    def __init__(self, plan: FLPlan) -> None:
        self.plan = plan

    @classmethod
    def bind(cls, plan: FLPlan) -> Aggregation:
        """The kind as this plan uses it (a kind with several variants, e.g. key custodies, picks one here)."""
        return cls(plan)

    @classmethod
    def vary(cls, raw: dict[str, Any], **options: Any) -> None:
        """What a raw recipe needs besides `aggregation:` on its fl_train steps for this kind (e.g. a keys step): added in place."""
        return None

    # --- the coordinator: before and after the federation ----------------------------------------------------
    @classmethod
    def prepare(cls, ctx: StepContext, plan: FLPlan) -> Aggregation:
        """Check what the kind needs from earlier steps, complete the plan with it, and refuse a strategy it cannot serve."""
        aggregation = cls.bind(plan)
        aggregation.check_strategy()
        return aggregation

    def check_strategy(self) -> None:
        """Refuse a strategy whose server step needs the average the kind keeps from the aggregator."""
        if refusal := self.refuses_strategy(self.plan.strategy).get(getattr(self, "custody", None)):
            raise AggregationError(refusal)

    @classmethod
    def refuses_strategy(cls, strategy: str) -> dict[str | None, str]:
        """Key custody (None: the kind needs no keys) -> why `strategy` cannot run under it: the step's contract carries
        this, so `validate` refuses the chain before anything runs, in the words the run would use."""
        if not STRATEGIES[strategy].server_step:
            return {}
        return {
            custody: f"strategy {strategy} takes its server step from the average of the updates, so the aggregator must read that average; {reason}"
            for custody, reason in cls.hiding_custodies().items()
        }

    @classmethod
    def hiding_custodies(cls) -> dict[str | None, str]:
        """Custody -> why the aggregator cannot read the weighted average of the updates under it, and what to do instead."""
        return {}

    @classmethod
    def options(cls) -> str | None:
        """The fl_train parameter (and plan field) holding this kind's own options, e.g. `secagg`; None: it has none.
        A recipe that sets it under another aggregation is refused."""
        return None

    def site_config(self, ctx: StepContext, site: str, private: Path) -> dict[str, str]:
        """Entries a site's node config needs besides its party and data (e.g. the path of its key)."""
        return {}

    def helper_configs(self, ctx: StepContext, private: Path) -> list[dict[str, str]]:
        """Node configs of parties that train nothing but serve the aggregation (e.g. a key holder)."""
        return []

    def server_material(self, ctx: StepContext) -> bytes | None:
        """What the aggregator is handed to combine with (e.g. a public CKKS context); None: nothing."""
        return None

    def final_model(self, ctx: StepContext, outcome: FinalAggregate, site: str) -> tuple[Standardizer, np.ndarray]:
        """The final global model and standardizer, as `site` holds them after the last broadcast."""
        import numpy as np

        return Standardizer(np.asarray(outcome.center), np.asarray(outcome.scale)), np.asarray(outcome.params)

    def summary(self, ctx: StepContext) -> dict[str, Any]:
        """What the step publishes about the aggregation, for the report and comparisons."""
        return {"update_protection": self.update_protection.value}

    @classmethod
    @abstractmethod
    def describe(cls, server: str, summary: Mapping[str, Any]) -> str:
        """The report's sentence on what the aggregator (and anyone else) could see of the updates."""

    # --- the sites (the ClientApp) ------------------------------------------------------------------------------
    @abstractmethod
    def site_moments(self, site: SiteNode, count: float, sums: np.ndarray, squares: np.ndarray) -> RecordDict:
        """A site's reply to the statistics query: its count, feature sums and sums of squares, as it may send them."""

    def site_standardizer(self, node: NodeConfig, config: ConfigRecord) -> tuple[Standardizer, float]:
        """The shared standardizer and the pooled number of training rows (0 where the site need not know it)."""
        import numpy as np

        standardizer = Standardizer(np.asarray(config["center"], dtype=float), np.asarray(config["scale"], dtype=float))
        return standardizer, float(cast(float, config.get("total-rows", 0.0)))

    def site_model(self, node: NodeConfig, arrays: ArrayRecord) -> np.ndarray:
        """The global model a site receives, as parameters."""
        return arrays["params"].numpy()

    @abstractmethod
    def site_update(self, site: SiteNode, params: np.ndarray, rows: int, total_rows: float, metrics: dict[str, float]) -> RecordDict:
        """A site's reply to training: its new parameters (from `rows` training rows) and `metrics`, as it may send them."""

    @classmethod
    def serve_helper(cls, node: NodeConfig, request: ConfigRecord) -> dict[str, Any]:
        """A helper party's answer to the aggregator's request, besides its identity (records by name)."""
        return {}

    @classmethod
    def serve_site(cls, site: SiteNode) -> RecordDict:
        """A site's answer to a step of the kind's own protocol (a query whose config holds PROTOCOL_OP)."""
        raise AggregationError(f"aggregation {cls.name!r} has no protocol of its own; site {site.party!r} got {site.request.get(PROTOCOL_OP)!r}")

    # --- the aggregator (the ServerApp) -----------------------------------------------------------------------
    def helpers(self) -> dict[str, str]:
        """Parties besides the sites the aggregator must reach, and what each is (for errors)."""
        return {}

    def open(self, material: bytes | None, ask: Ask, ask_sites: AskSites) -> AggregatorEnd:
        """The aggregator's side, from what the coordinator handed it."""
        return AggregatorEnd(None, ask, ask_sites)

    @abstractmethod
    def pool_moments(self, end: AggregatorEnd, replies: list[Message]) -> PooledMoments:
        """The sites' statistics replies, combined."""

    def train_requests(self, end: AggregatorEnd, sites: list[str], server_round: int) -> dict[str, dict[str, Any]]:
        """What each site's training message carries besides the model and the round config, by site, before the round
        trains (a kind may first run steps of its own protocol with them). A site left out is not asked to train and
        counts as dropped out of the round."""
        return {site: {} for site in sites}

    def round_config(self, pooled: PooledMoments) -> dict[str, Any]:
        """What every training and evaluation message carries for standardization."""
        assert pooled.standardizer is not None
        return {"center": pooled.standardizer.center.tolist(), "scale": pooled.standardizer.scale.tolist()}

    @abstractmethod
    def combine(self, end: AggregatorEnd, replies: list[Message], flower: FlowerAggregate) -> Aggregated:
        """A round's training replies (quorum checked) into the next global model."""

    def final(self, arrays: ArrayRecord, pooled: PooledMoments) -> FinalAggregate:
        """What the aggregator holds once the last round is done."""
        assert pooled.standardizer is not None
        return FinalAggregate(arrays["params"].numpy().tolist(), pooled.standardizer.center.tolist(), pooled.standardizer.scale.tolist())

    def label(self, kind: str, content: RecordDict) -> tuple[str, str]:
        """The ledger's kind and protection for a message of `kind` with this content: by default updates are protected as
        the kind protects them, and nothing else is."""
        return kind, (self.update_protection if kind == REPLY_KINDS["train"] else Protection.NONE).value


def float_array(values: Sequence[float] | np.ndarray) -> Array:
    """Values as one Flower array of float64."""
    import numpy as np
    from flwr.app import Array

    return Array(np.ascontiguousarray(values, dtype=np.float64))


KINDS: dict[str, type[Aggregation]] = {}


def register(cls: type[Aggregation]) -> type[Aggregation]:
    if cls.name in KINDS:
        raise ValueError(f"aggregation {cls.name!r} is registered twice ({KINDS[cls.name].__name__} and {cls.__name__})")
    if any(other.update_protection is cls.update_protection for other in KINDS.values()):
        raise ValueError(
            f"aggregation {cls.name!r}: another kind already records updates as {cls.update_protection.value!r}, and published summaries name their kind by it"
        )
    KINDS[cls.name] = cls
    return cls


def kind(name: str) -> type[Aggregation]:
    if name not in KINDS:
        raise AggregationError(f"unknown aggregation {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


def for_plan(plan: FLPlan) -> Aggregation:
    """The plan's aggregation, as every party builds it."""
    return kind(plan.aggregation).bind(plan)


def for_summary(summary: Mapping[str, Any]) -> type[Aggregation]:
    """The kind that published a summary (`Aggregation.summary`)."""
    return next(k for k in KINDS.values() if k.update_protection.value == summary["update_protection"])
