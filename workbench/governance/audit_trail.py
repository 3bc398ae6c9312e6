"""A party's audit trail: an append-only log whose every entry carries the hash of the one before it.

Each entry is canonical JSON with `prev` (the previous entry's hash) and `hash` (SHA-256 of the entry without it), so
editing, reordering or removing any entry but the last breaks the chain at that entry, and `verify_trail` names it.
Cutting entries off the end leaves a valid chain: the head hash is also written to the run's manifest.json, which
`workbench audit verify` compares with the log's last entry (docs/governance.md says what that does not cover).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.governance.signing import canonical

GENESIS = "0" * 64
TRAIL_DIR = "audit"
"""Where a run keeps its parties' trails: audit/PARTY.jsonl."""


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({key: value for key, value in entry.items() if key != "hash"})).hexdigest()


class AuditTrail:
    """One party's log; `append` writes through at once, so a run that dies keeps what happened until then."""

    def __init__(self, path: Path, party: str) -> None:
        self.path = path
        self.party = party
        self.head = GENESIS
        self.entries = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        entry = {"seq": self.entries, "party": self.party, "time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        entry["prev"] = self.head
        entry["hash"] = entry_hash(entry)
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        self.head, self.entries = entry["hash"], self.entries + 1
        return entry


def read_trail(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def verify_trail(path: Path, expected_head: str | None = None) -> list[str]:
    """Every break in the chain, by line: an entry whose hash is not its content's, or whose `prev` is not the hash
    before it; and a last hash other than `expected_head` when one is given (entries cut off the end)."""
    problems: list[str] = []
    head: str | None = GENESIS
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"{path}:{line_number}: not a JSON entry")
            head = None
            continue
        if not isinstance(entry, dict) or "hash" not in entry:
            problems.append(f"{path}:{line_number}: an entry without its hash")
            head = None
            continue
        if entry.get("seq") != line_number - 1:
            problems.append(f"{path}:{line_number}: entry numbered {entry.get('seq')!r} where {line_number - 1} was due (removed or reordered)")
        if head is not None and entry.get("prev") != head:
            problems.append(f"{path}:{line_number}: does not follow the entry before it (an entry was changed, removed or inserted)")
        if entry_hash(entry) != entry["hash"]:
            problems.append(f"{path}:{line_number}: its content does not match its hash (the entry was edited)")
        head = entry["hash"]
    if expected_head is not None and head != expected_head:
        problems.append(f"{path}: its last entry is not the head the run recorded in manifest.json (entries were cut off the end)")
    return problems
