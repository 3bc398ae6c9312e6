"""Approval through the owner's PySyft datasite: `workbench approve --via syft`.

syft 0.9.5 runs in an environment of its own (`scripts/syft-env`; its pins conflict with this stack), so this module
drives `syft_datasite.py` there as a subprocess. The owner's table and its mock go to a datasite that lives for the
one approval, the recipe arrives as a syft code request pinned to the recipe hash, and the owner's decision is
syft's approve or deny. What syft reports (request id, code hash, status, the release of the approved code on the
private table) is the evidence the owner's Ed25519 approval then signs, so the runner's check does not change.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from workbench.governance.approvals import ApprovalError, SyftEvidence
from workbench.governance.syft_datasite import EVENT_PREFIX
from workbench.subprocess_env import for_another_python

SYFT_PYTHON_ENV = "WORKBENCH_SYFT_PYTHON"
DEFAULT_SYFT_PYTHON = Path(sys.prefix).parent / ".syftenv" / "bin" / "python"
"""Where `scripts/syft-env` puts syft's environment: beside the workbench's own (.venv), whatever the working folder."""
TIMEOUT_S = 300.0
"""Per answer from the datasite: syft's import alone takes about 20 s on two cores."""


@dataclass(frozen=True)
class PendingRequest:
    """The code request as the owner's datasite holds it, before the owner decides."""

    request_id: str
    code_hash: str
    code: str
    requested_by: str
    status: str
    refused_while_pending: str
    """What syft answered when the researcher tried to run the request on the private table before approval."""


def syft_python() -> Path:
    python = Path(os.environ.get(SYFT_PYTHON_ENV) or DEFAULT_SYFT_PYTHON)
    if not python.is_file():
        raise ApprovalError(
            f"no syft environment at {python}: syft 0.9.5 runs in an environment of its own; create it with `scripts/syft-env` "
            f"(or set {SYFT_PYTHON_ENV} to a Python that has syft 0.9.5), or approve without --via syft"
        )
    return python.absolute()  # not resolve(): a venv's python is a symlink, and the link is what finds the venv


def function_name(recipe_name: str, recipe_hash: str) -> str:
    return f"workbench_{re.sub(r'[^0-9a-zA-Z]+', '_', recipe_name).strip('_').lower()}_{recipe_hash[:12]}"


def approve_through_syft(
    party: str,
    recipe_name: str,
    recipe_hash: str,
    review_digest: str,
    table: str,
    mock: pl.DataFrame,
    private: pl.DataFrame,
    decide: Callable[[PendingRequest], bool],
) -> SyftEvidence:
    """Submit the recipe to the party's datasite, let `decide` (the owner) approve or deny it there, return syft's evidence.

    Raises ApprovalError when the owner denies, or when what syft released is not the recipe and review as submitted.
    """
    python = syft_python()
    job: dict[str, Any] = {
        "party": party,
        "recipe_name": recipe_name,
        "recipe_hash": recipe_hash,
        "review_digest": review_digest,
        "table": table if table.isidentifier() else "table",
        "function": function_name(recipe_name, recipe_hash),
    }
    folder = Path(tempfile.mkdtemp(prefix="workbench-syft-"))  # 0700: the private table and syft's database live here
    try:
        job["private"], job["mock"] = str(folder / "private.parquet"), str(folder / "mock.parquet")
        private.write_parquet(job["private"])
        mock.write_parquet(job["mock"])
        env = for_another_python(TMPDIR=str(folder), PYTHONUNBUFFERED="1")
        script = Path(__file__).with_name("syft_datasite.py")
        with subprocess.Popen(
            [str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder
        ) as process:
            try:
                return _converse(process, job, decide)
            finally:
                process.kill()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _converse(process: subprocess.Popen[str], job: dict[str, Any], decide: Callable[[PendingRequest], bool]) -> SyftEvidence:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process, lines), daemon=True).start()
    log: deque[str] = deque(maxlen=30)
    _send(process, job)
    submitted = _next_event(lines, log)
    pending = PendingRequest(**{k: v for k, v in submitted.items() if k != "event"})
    approve = decide(pending)
    _send(process, {"approve": approve})
    decided = _next_event(lines, log)
    if not approve:
        raise ApprovalError(f"the owner of {job['party']!r} denied request {pending.request_id} on its datasite (syft status: {decided['status']})")
    released = decided.get("released") or {}
    if decided["status"] != "approved" or released.get("recipe_hash") != job["recipe_hash"] or released.get("review_digest") != job["review_digest"]:
        raise ApprovalError(f"the datasite of {job['party']!r} did not release the recipe as submitted: status {decided['status']}, released {released}")
    return SyftEvidence(
        datasite=str(decided["datasite"]),
        request_id=pending.request_id,
        code_hash=pending.code_hash,
        requested_by=pending.requested_by,
        status="approved",
        released_rows=int(released["rows"]),
    )


def _send(process: subprocess.Popen[str], message: dict[str, object]) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put("")  # end of output


def _next_event(lines: queue.Queue[str], log: deque[str]) -> dict[str, Any]:
    """The datasite's next event line; its other output is kept for the error when it fails or goes quiet."""
    while True:
        try:
            line = lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise ApprovalError(f"the syft datasite did not answer within {TIMEOUT_S:.0f} s; its last output:\n" + "".join(log)) from None
        if not line:
            raise ApprovalError("the syft datasite stopped before it answered; its last output:\n" + "".join(log))
        if line.startswith(EVENT_PREFIX):
            event: dict[str, Any] = json.loads(line[len(EVENT_PREFIX) :])
            if event["event"] == "error":
                raise ApprovalError(f"the syft datasite failed: {event['message']}")
            return event
        log.append(line)
