from __future__ import annotations

import re

from workbench.ledger import Ledger, Protection
from workbench.report.html import boundary_statement, human_bytes, number_cell
from workbench.runner import RunResult


def test_report_is_self_contained_and_complete(light_flagship_run: RunResult) -> None:
    html = (light_flagship_run.out_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external resources"
    assert html.count("data:image/png;base64,") >= 1
    for text in (
        "general_hospital",
        "trauma_center",
        "Held-out performance per site",
        "What crossed each boundary",
        "carried row-level data, as the recipe declares",
        light_flagship_run.manifest["recipe"]["hash"][:16],
    ):
        assert text in html


def test_boundary_statement_lists_declared_row_level_flows() -> None:
    ledger = Ledger()
    ledger.record(step="link", sender="vendor", receiver="clinic", kind="features.shared", payload=b"x" * 10, protection=Protection.NONE, row_level=True)
    statement = boundary_statement(ledger)
    assert statement.startswith("1 message(s) carried row-level data")
    assert "vendor → clinic (features.shared, protection: none)" in statement


def test_human_bytes() -> None:
    assert (human_bytes(512), human_bytes(2048), human_bytes(5 * 1024**3)) == ("512 B", "2.0 KB", "5.0 GB")


def test_numbers_keep_the_digits_that_matter() -> None:
    assert [number_cell(x) for x in (0.8851, 1.4612, 657.7, 2.9e-10, 0.0)] == ["0.8851", "1.46", "657.70", "2.9e-10", "0.0000"]
