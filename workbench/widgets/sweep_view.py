"""A sweep in a notebook: its variants as one group, with the comparison sweep.html shows (table and figures)."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets

from workbench.widgets.explain import blocks_html


class SweepView(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types, so its VBox is Any to a checker
    """The sweep written to `folder`, read from sweep.json and its variants' run directories (so also one still running)."""

    def __init__(self, folder: Path | str) -> None:
        from workbench.report.sweep_comparison import comparison_rows, sweep_blocks
        from workbench.sweep import load_sweep

        self.folder = Path(folder)
        path, variants = load_sweep(self.folder)
        self.variants = variants
        done = sum(v.status == "finished" for v in variants)
        header = widgets.HTML(f"<b>Sweep of <code>{path}</code></b>: {done} of {len(variants)} variants finished, in {self.folder}")
        super().__init__([header, widgets.HTML(blocks_html(sweep_blocks(path, variants, comparison_rows(variants))))])
