"""`workbench audit verify RUN`: every party's trail checked against itself, the run's manifest and its ledger.

A trail verifies when its chain is unbroken, its last hash is the head manifest.json recorded, every release it lists
is the ledger entry of that number (same sender, step and digest), and the summary the coordinator kept in
metrics.json is byte for byte what was released. With the approvals folder, each admission's signature is checked
against the party's registered key as well.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from workbench.context import summary_payload
from workbench.governance import signing
from workbench.governance.approvals import Approval, registered_key
from workbench.governance.audit_trail import TRAIL_DIR, read_trail, verify_trail
from workbench.ledger import read_ledger


def verify_run(run_dir: Path, approvals_dir: Path | None = None) -> tuple[list[str], int]:
    """(problems, entries checked); no problems means every trail is intact and agrees with the run's records."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    heads = manifest.get("governance", {}).get("audit_heads", {})
    ledger = {message.seq: message for message in read_ledger(run_dir / "ledger.jsonl")}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    problems: list[str] = []
    checked = 0
    for party, head in heads.items():
        path = run_dir / TRAIL_DIR / f"{party}.jsonl"
        if not path.is_file():
            problems.append(f"party {party!r}: its trail {path} is missing")
            continue
        broken = verify_trail(path, head)
        problems += broken
        if broken:
            continue
        for entry in read_trail(path):
            checked += 1
            if entry["event"] == "release":
                problems += _release_problems(party, entry, ledger, metrics)
            if entry["event"] == "admission" and entry["mode"] == "approved" and approvals_dir is not None:
                problems += _signature_problems(party, entry, approvals_dir)
    return problems, checked


def _release_problems(party: str, entry: dict[str, Any], ledger: dict[int, Any], metrics: dict[str, Any]) -> list[str]:
    message = ledger.get(entry["ledger_seq"])
    where = f"party {party!r}, release of step {entry['step']!r} (ledger entry {entry['ledger_seq']})"
    if message is None or (message.sender, message.step, message.digest) != (party, entry["step"], entry["digest"]):
        return [f"{where}: the ledger does not hold this release (sender, step or digest differ)"]
    kept = metrics["steps"].get(entry["step"], {}).get(party)
    if kept is None or hashlib.sha256(summary_payload(kept)).hexdigest() != entry["digest"]:
        return [f"{where}: metrics.json does not hold what was released"]
    return []


def _signature_problems(party: str, entry: dict[str, Any], approvals_dir: Path) -> list[str]:
    fields = {key: entry[key] for key in Approval.model_fields if key != "party" and key in entry}
    approval = Approval.model_validate(fields | {"party": party})
    if not signing.verify(registered_key(approvals_dir, party), approval.body(), approval.signature):
        return [f"party {party!r}: the approval its trail records does not verify against its registered key in {approvals_dir}"]
    return []
