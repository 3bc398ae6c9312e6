"""Small SVG charts for the widgets that redraw on every event: line curves and a party-to-party flow diagram.

Plain SVG strings render the same live in JupyterLab, in a notebook executed
headless and in a saved .ipynb, need no plotting backend in the kernel, and
redraw cheaply on every event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from math import log10

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
PROTECTION_COLORS = {"none": "#d62728", "blinded": "#1f77b4", "ckks": "#2ca02c", "masked": "#9467bd", "encrypted": "#17becf", "dp": "#ff7f0e"}
MAX_MARKERS = 30
FONT = "font-family='var(--jp-ui-font-family, sans-serif)' font-size='11'"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]], *, xlabel: str = "", width: int = 440, height: int = 210) -> str:
    """One line per series over shared axes; points are (x, y), marked while there are few enough to tell apart."""
    points = [p for values in series.values() for p in values]
    left, right, top, bottom = 42, 140, 22, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [_svg_open(width, height), _text(left, 14, title, weight="600")]
    if not points:
        parts.append(_text(left, top + plot_h / 2, "waiting for values…", fill="#888"))
        return "".join(parts) + "</svg>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = _pad_range(min(ys), max(ys))

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    parts.append(_axes(left, top, plot_w, plot_h, (y0, y1), sy, xrange=(x0, x1), sx=sx, xlabel=xlabel))
    for index, (name, values) in enumerate(series.items()):
        ordered = sorted(values)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ordered)
        parts.append(f"<polyline points='{path}' fill='none' stroke='{color(index)}' stroke-width='2'/>")
        if len(ordered) <= MAX_MARKERS:
            parts.extend(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='2.5' fill='{color(index)}'/>" for x, y in ordered)
        parts.append(_legend(left + plot_w + 10, top + 12 + 16 * index, name, color(index)))
    return "".join(parts) + "</svg>"


def flow_diagram(flows: Sequence[Mapping[str, object]], *, width: int = 520) -> str:
    """Senders on the left, receivers on the right, one curve per (sender, receiver, protection).

    Each flow has sender, receiver, protection, messages and bytes; a curve's
    width grows with the log of its bytes and its colour tells the protection.
    """
    senders = list(dict.fromkeys(str(f["sender"]) for f in flows))
    receivers = list(dict.fromkeys(str(f["receiver"]) for f in flows))
    rows = max(len(senders), len(receivers), 1)
    height = 40 + rows * 34 + 16 * len(PROTECTION_COLORS) // 2
    parts = [_svg_open(width, height)]
    if not flows:
        parts.append(_text(10, 20, "no messages yet", fill="#888"))
        return "".join(parts) + "</svg>"
    lx, rx = 130, width - 130

    def y_of(names: list[str], name: str) -> float:
        return 30 + (names.index(name) + 0.5) * (rows * 34) / len(names)

    most = max(int(f["bytes"]) for f in flows) or 1  # type: ignore[call-overload]
    for f in flows:
        y1, y2 = y_of(senders, str(f["sender"])), y_of(receivers, str(f["receiver"]))
        nbytes = int(f["bytes"])  # type: ignore[call-overload]
        stroke = 1.5 + 8 * log10(1 + nbytes) / log10(1 + most)
        colour = PROTECTION_COLORS.get(str(f["protection"]), "#7f7f7f")
        mid = (lx + rx) / 2
        parts.append(
            f"<path d='M{lx},{y1:.1f} C{mid},{y1:.1f} {mid},{y2:.1f} {rx},{y2:.1f}' fill='none' stroke='{colour}' stroke-opacity='0.55' "
            f"stroke-width='{stroke:.1f}'><title>{escape(str(f['sender']))} → {escape(str(f['receiver']))}: {f['messages']} message(s), "
            f"{nbytes:,} bytes, protection {escape(str(f['protection']))}</title></path>"
        )
    for name in senders:
        parts.append(_node(lx, y_of(senders, name), name, anchor="end"))
    for name in receivers:
        parts.append(_node(rx, y_of(receivers, name), name, anchor="start"))
    legend_y = 30 + rows * 34 + 8
    for i, (protection, colour) in enumerate(PROTECTION_COLORS.items()):
        parts.append(_legend(10 + i * 95, legend_y, protection, colour))
    return "".join(parts) + "</svg>"


def _svg_open(width: int, height: int) -> str:
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' {FONT}>"


def _text(x: float, y: float, text: str, *, anchor: str = "start", weight: str = "400", fill: str = "currentColor") -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' font-weight='{weight}' fill='{fill}'>{escape(text)}</text>"


def _legend(x: float, y: float, label: str, colour: str) -> str:
    return f"<rect x='{x:.1f}' y='{y - 8:.1f}' width='10' height='10' rx='2' fill='{colour}'/>" + _text(x + 14, y + 1, label)


def _node(x: float, y: float, name: str, *, anchor: str) -> str:
    dx = -8 if anchor == "end" else 8
    return f"<circle cx='{x}' cy='{y:.1f}' r='5' fill='#555'/>" + _text(x + dx, y + 4, name, anchor=anchor)


def _pad_range(low: float, high: float) -> tuple[float, float]:
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _axes(
    left: float,
    top: float,
    w: float,
    h: float,
    yrange: tuple[float, float],
    sy: Callable[[float], float],
    ylabel: str = "",
    xrange: tuple[float, float] | None = None,
    sx: Callable[[float], float] | None = None,
    xlabel: str = "",
) -> str:
    parts = [
        f"<line x1='{left}' y1='{top + h}' x2='{left + w}' y2='{top + h}' stroke='#999'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + h}' stroke='#999'/>",
    ]
    for tick in _ticks(*yrange):
        parts.append(f"<line x1='{left - 3}' y1='{sy(tick):.1f}' x2='{left + w}' y2='{sy(tick):.1f}' stroke='#ddd' stroke-dasharray='2,3'/>")
        parts.append(_text(left - 5, sy(tick) + 4, _fmt(tick), anchor="end", fill="#666"))
    if xrange and sx:
        for tick in _ticks(*xrange):
            parts.append(_text(sx(tick), top + h + 13, _fmt(tick), anchor="middle", fill="#666"))
        if xlabel:
            parts.append(_text(left + w / 2, top + h + 26, xlabel, anchor="middle", fill="#666"))
    if ylabel:
        parts.append(_text(left - 30, top - 8, ylabel, fill="#666"))
    return "".join(parts)


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = (low // step + 1) * step
    ticks, value = [], first
    while value <= high + 1e-12:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.1e}"
