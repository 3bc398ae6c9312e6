"""Content a step contributes to the report, independent of where it is shown.

The same blocks render as HTML in report.html, as rich tables in the CLI's
summary, and (later) as widgets in a notebook, so a step describes its results
once.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[object]]
    note: str = ""


@dataclass(frozen=True)
class Figure:
    """A finished figure as PNG bytes, embedded in the report as a data URI."""

    title: str
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Text:
    title: str
    paragraphs: list[str] = field(default_factory=list)


Block = Table | Figure | Text
