"""The shared reducer, read incrementally: a tail of an events file folds to the same state as reading it whole."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.events import Progress, RunStarted, StepFinished, StepStarted, read_events
from workbench.run_state import EventTail, Status, fold


def _line(event: object) -> str:
    return json.dumps(event.to_dict()) + "\n"  # type: ignore[attr-defined]


def test_a_tail_folds_only_whole_lines_and_what_was_appended_since(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.update().status is Status.WAITING, "no file yet"
    started = RunStarted(recipe="r", recipe_hash="0" * 64, out_dir="o", steps=["split"], started="2026-12-04T17:00:00")
    path.write_text(_line(started) + _line(StepStarted(step="split", kind="split", index=0, total=1))[:20])
    state = tail.update()
    assert state.status is Status.RUNNING and state.started == "2026-12-04T17:00:00" and state.steps["split"].status is Status.WAITING
    with path.open("w") as handle:  # the half line completed, then more
        handle.write(_line(started) + _line(StepStarted(step="split", kind="split", index=0, total=1)) + _line(Progress(step="split", done=1, total=2)))
    assert tail.update().steps["split"].done == 1
    with path.open("a") as handle:
        handle.write(_line(StepFinished(step="split", seconds=0.1)))
    assert tail.update() == fold(read_events(path)) and tail.state.steps["split"].status is Status.FINISHED


def test_a_file_replaced_by_another_is_folded_anew(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(_line(RunStarted(recipe="first", recipe_hash="0" * 64, out_dir="o")))
    tail = EventTail(path)
    assert tail.update().recipe == "first"
    replacement = tmp_path / "new.jsonl"
    replacement.write_text(_line(RunStarted(recipe="second", recipe_hash="1" * 64, out_dir="o", steps=["a", "b"])))
    replacement.replace(path)
    assert tail.update().recipe == "second" and list(tail.state.steps) == ["data", "a", "b"]
