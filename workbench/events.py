"""Typed events the runner emits while a recipe runs, written and read through the same models.

The runner never prints. The CLI renders events as progress bars, notebook
widgets as live plots, the Jupyter server streams them to the browser, and
tests collect them. Each event serializes to a flat JSON object with a `type`;
`parse_event` and `read_events` turn events.jsonl back into the same classes,
and `workbench.run_state` folds them into the state of a run, for every face.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from workbench.ledger import Message


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class RunStarted(Event):
    type: Literal["run_started"] = "run_started"
    recipe: str
    recipe_hash: str
    out_dir: str
    steps: list[str] = Field(default_factory=list)
    started: str | None = None
    """When the run started (ISO 8601, local time, seconds): what every runs list shows, not a file's timestamp."""


class StepStarted(Event):
    type: Literal["step_started"] = "step_started"
    step: str
    kind: str
    index: int
    total: int
    parties: list[str] = Field(default_factory=list)


class Progress(Event):
    """Work done within a step, e.g. a party's training epochs or a round of federated learning."""

    type: Literal["progress"] = "progress"
    step: str
    done: int
    total: int
    label: str = ""


class Metric(Event):
    type: Literal["metric"] = "metric"
    step: str
    name: str
    value: float
    party: str | None = None
    round: int | None = None


class MessageSent(Event):
    type: Literal["message_sent"] = "message_sent"
    message: Message


class StepFinished(Event):
    type: Literal["step_finished"] = "step_finished"
    step: str
    seconds: float


class StepFailed(Event):
    type: Literal["step_failed"] = "step_failed"
    step: str
    error: str


class Notice(Event):
    """Something the user should know that is no step's result, e.g. stale private files an earlier, killed run left."""

    type: Literal["notice"] = "notice"
    text: str


class RunFinished(Event):
    type: Literal["run_finished"] = "run_finished"
    out_dir: str
    seconds: float


class RunFailed(Event):
    """The run stopped on an error; `phase` is the step, or `data` while the parties' data loaded."""

    type: Literal["run_failed"] = "run_failed"
    phase: str
    error: str
    user_error: bool = True
    """False: a bug in the workbench, whose stack is in error.log."""


class RunInterrupted(Event):
    """Ctrl-C, a kernel interrupt or SIGTERM stopped the run; child processes were stopped and private files removed."""

    type: Literal["run_interrupted"] = "run_interrupted"
    phase: str


AnyEvent = Annotated[
    RunStarted | StepStarted | Progress | Metric | MessageSent | StepFinished | StepFailed | Notice | RunFinished | RunFailed | RunInterrupted,
    Field(discriminator="type"),
]
_EVENTS: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

EventListener = Callable[[Event], None]


def parse_event(data: dict[str, Any] | Event) -> Event:
    """An event from its JSON object (as events.jsonl and the server's stream carry it); an Event passes through."""
    return data if isinstance(data, Event) else _EVENTS.validate_python(data)


def read_events(path: Path) -> list[Event]:
    """Every complete event in an events.jsonl: the runner may be half-way through writing the last line, and a
    line another version of the workbench wrote with an unknown type is skipped rather than fatal to a runs list."""
    try:
        text = path.read_bytes()
    except OSError:
        return []
    return parse_lines(text[: text.rfind(b"\n") + 1])


def parse_lines(complete: bytes, skip: frozenset[str] = frozenset()) -> list[Event]:
    """The events in whole lines of an events.jsonl (each ending in a newline), skipping what does not parse and the
    types in `skip` before they are validated (a reader that ignores ledger messages need not build them)."""
    events = []
    for line in complete.splitlines():
        try:
            data = json.loads(line)
            if isinstance(data, dict) and data.get("type") in skip:
                continue
            events.append(parse_event(data))
        except ValueError:  # json.JSONDecodeError (UnicodeDecodeError too) and pydantic's ValidationError are ValueErrors
            continue
    return events
