"""The hash chain names the entry that was changed, removed or inserted."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.governance.audit_trail import AuditTrail, verify_trail


def _trail(tmp_path: Path) -> tuple[Path, AuditTrail]:
    trail = AuditTrail(tmp_path / "north.jsonl", "north")
    for step in ("split", "train", "evaluate"):
        trail.append("read", step=step, table="data", rows=100)
    return trail.path, trail


def test_an_untouched_trail_verifies_to_its_head(tmp_path: Path) -> None:
    path, trail = _trail(tmp_path)
    assert verify_trail(path, trail.head) == []


def test_an_inserted_entry_breaks_the_chain_where_it_was_put(tmp_path: Path) -> None:
    path, trail = _trail(tmp_path)
    lines = path.read_text().splitlines()
    forged = json.loads(lines[1]) | {"step": "forged"}
    path.write_text("\n".join([lines[0], json.dumps(forged), *lines[1:]]) + "\n")
    problems = verify_trail(path, trail.head)
    assert any(problem.startswith(f"{path}:2:") for problem in problems)


def test_an_entry_rehashed_after_editing_still_breaks_the_link_after_it(tmp_path: Path) -> None:
    from workbench.governance.audit_trail import entry_hash

    path, trail = _trail(tmp_path)
    lines = path.read_text().splitlines()
    edited = json.loads(lines[1]) | {"rows": 5}
    edited["hash"] = entry_hash(edited)  # a forger who recomputes the entry's own hash
    lines[1] = json.dumps(edited)
    path.write_text("\n".join(lines) + "\n")
    assert [problem.split(": ", 1)[0] for problem in verify_trail(path, trail.head)] == [f"{path}:3"]
