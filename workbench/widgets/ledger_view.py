"""The ledger view: bytes and messages between parties, by protection, as a table and a diagram.

Built from a finished ledger (a RunResult's, or a run directory's
ledger.jsonl) or fed live as a listener of the runner's message events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from workbench.events import Event
from workbench.ledger import Ledger, Message, read_ledger
from workbench.report.html import human_bytes
from workbench.widgets import svg
from workbench.widgets.html import heading, note, table


def flows(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages grouped by (sender, receiver, protection), first-seen order, with kinds, counts and bytes."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for m in messages:
        key = (m["sender"], m["receiver"], str(m["protection"]))
        group = groups.setdefault(key, {"sender": key[0], "receiver": key[1], "protection": key[2], "kinds": [], "messages": 0, "bytes": 0, "row_level": False})
        if m["kind"] not in group["kinds"]:
            group["kinds"].append(m["kind"])
        group["messages"] += 1
        group["bytes"] += int(m["nbytes"])
        group["row_level"] = group["row_level"] or bool(m["row_level"])
    return list(groups.values())


class LedgerView(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types, so its VBox is Any to a checker
    """Table and diagram of what crossed each boundary; call it with events to update live."""

    def __init__(self, messages: Ledger | Iterable[Message | Mapping[str, Any]] | Path | str = ()) -> None:
        self.html = widgets.HTML()
        super().__init__([self.html])
        self.add_class("wb-ledger-view")
        self._messages: list[dict[str, Any]] = [_as_dict(m) for m in _messages_of(messages)]
        self._render()

    def __call__(self, event: Event | Mapping[str, Any]) -> None:
        data = event.to_dict() if isinstance(event, Event) else dict(event)
        if data.get("type") == "message_sent":
            self._messages.append(_as_dict(data["message"]))
            self._render()

    def _render(self) -> None:
        grouped = flows(self._messages)
        total = sum(f["bytes"] for f in grouped)
        rows = [
            [
                f"{f['sender']} → {f['receiver']}",
                f["protection"],
                ", ".join(f["kinds"]),
                f["messages"],
                human_bytes(f["bytes"]),
                "yes" if f["row_level"] else "",
            ]
            for f in grouped
        ]
        by_protection: dict[str, int] = {}
        for f in grouped:
            by_protection[f["protection"]] = by_protection.get(f["protection"], 0) + f["bytes"]
        summary = " · ".join(f"{p}: {human_bytes(b)}" for p, b in by_protection.items())
        self.html.value = (
            heading("Ledger", f"{len(self._messages)} messages, {human_bytes(total)}")
            + (note(f"by protection — {summary}") if summary else note("no messages yet"))
            + "<div style='display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start'>"
            + f"<div>{table(['from → to', 'protection', 'kinds', 'messages', 'bytes', 'row-level'], rows, css_class='wb-ledger-table')}</div>"
            + f"<div>{svg.flow_diagram(grouped)}</div></div>"
        )


def _messages_of(source: Ledger | Iterable[Message | Mapping[str, Any]] | Path | str) -> Iterable[Message | Mapping[str, Any]]:
    if isinstance(source, Ledger):
        return source.messages
    if isinstance(source, str | Path):
        path = Path(source)
        return read_ledger(path / "ledger.jsonl" if path.is_dir() else path)
    return source


def _as_dict(message: Message | Mapping[str, Any]) -> dict[str, Any]:
    data = asdict(message) if isinstance(message, Message) else dict(message)
    data["protection"] = str(data["protection"])
    return data
