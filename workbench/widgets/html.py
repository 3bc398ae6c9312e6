"""HTML pieces shared by the widgets: tables, notes and number formatting, styled inline.

Inline styles (with JupyterLab's theme variables and plain fallbacks) survive
every place a widget's HTML ends up: live in Lab, in a saved notebook and in
a notebook rendered outside Jupyter.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Sequence
from html import escape

BORDER = "1px solid var(--jp-border-color2, #ddd)"
MUTED = "color: var(--jp-ui-font-color2, #666)"
CARD = f"border: {BORDER}; border-radius: 6px; padding: 8px 12px; margin: 4px 0; background: var(--jp-layout-color0, #fff)"


def cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


def table(columns: Sequence[str], rows: Sequence[Sequence[object]], *, bold: Collection[tuple[int, int]] = (), css_class: str = "") -> str:
    """A compact table; `bold` holds (row, column) positions to emphasise, e.g. each site's best model."""
    head = "".join(f"<th style='text-align:left; padding:3px 10px; border-bottom:{BORDER}'>{escape(c)}</th>" for c in columns)
    body = []
    for r, row in enumerate(rows):
        tds = []
        for c, value in enumerate(row):
            weight = "font-weight:600;" if (r, c) in bold else ""
            align = "text-align:right;" if isinstance(value, int | float) and not isinstance(value, bool) else ""
            tds.append(f"<td style='padding:2px 10px; {align}{weight}'>{cell(value)}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table class='{css_class}' style='border-collapse:collapse; margin:4px 0'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def heading(text: str, note: str = "") -> str:
    extra = f" <span style='{MUTED}; font-weight:400'>{escape(note)}</span>" if note else ""
    return f"<div style='font-weight:600; font-size:1.05em; margin:6px 0 2px'>{escape(text)}{extra}</div>"


def note(text: str) -> str:
    return f"<div style='{MUTED}; font-size:0.9em'>{escape(text)}</div>"


def png_img(png: bytes, max_width: int = 560) -> str:
    """A PNG figure inline, so it shows the same live in JupyterLab, in an executed notebook and in a saved one."""
    return f"<img style='max-width:{max_width}px' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>"
