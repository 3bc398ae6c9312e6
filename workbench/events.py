"""Typed events the runner emits while a recipe runs.

The runner never prints. The CLI renders events as progress bars, notebook
widgets as live plots, the Jupyter server streams them to the browser, and
tests collect them. Each event serializes to a flat JSON object with a `type`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from workbench.ledger import Message


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    recipe: str
    recipe_hash: str
    out_dir: str
    steps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StepStarted(Event):
    type: ClassVar[str] = "step_started"
    step: str
    kind: str
    index: int
    total: int
    parties: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Progress(Event):
    """Work done within a step, e.g. a party's training epochs or a round of federated learning."""

    type: ClassVar[str] = "progress"
    step: str
    done: int
    total: int
    label: str = ""


@dataclass(frozen=True)
class Metric(Event):
    type: ClassVar[str] = "metric"
    step: str
    name: str
    value: float
    party: str | None = None
    round: int | None = None


@dataclass(frozen=True)
class MessageSent(Event):
    type: ClassVar[str] = "message_sent"
    message: Message


@dataclass(frozen=True)
class StepFinished(Event):
    type: ClassVar[str] = "step_finished"
    step: str
    seconds: float


@dataclass(frozen=True)
class StepFailed(Event):
    type: ClassVar[str] = "step_failed"
    step: str
    error: str


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that is no step's result, e.g. stale private files an earlier, killed run left."""

    type: ClassVar[str] = "notice"
    text: str


@dataclass(frozen=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    out_dir: str
    seconds: float


EventListener = Callable[[Event], None]
