"""Private scratch folders: what a party's node must read from disk (its rows, its key), and nobody else.

A federated step hands each site's node its training rows and, under CKKS, its
key context through files, since on the deployment runtime the nodes are other
processes. Those files are as private as the party's store: folders 0700, files
0600, created exclusively (never through a planted symlink), and removed on
every way out of the step. A run killed with SIGKILL cannot remove anything,
so each folder carries its owner's process id and start time, and the next run
sweeps the folders whose owner is gone and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

PREFIX = "workbench-private-"
OWNER_FILE = "owner.json"
CREATION_GRACE_SECONDS = 60.0
"""A folder without its owner file may be one another run is creating this instant: left alone for this long."""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat): a pid with another start time is another process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@contextmanager
def private_folder(what: str) -> Iterator[Path]:
    """A fresh 0700 folder under the system's temporary folder, removed when the block ends however it ends."""
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{what}-"))
    try:
        owner = {"pid": os.getpid(), "start": _start_time(os.getpid())}
        write_private(folder / OWNER_FILE, json.dumps(owner).encode())
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_private(path: Path, content: bytes) -> Path:
    """Write a new file readable by its owner only."""
    with private_file(path) as handle:
        handle.write(content)
    return path


def private_file(path: Path) -> BinaryIO:
    """A new owner-only file opened for writing; refuses anything already at `path`, a planted symlink included."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb")


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the private folders of runs that died without cleaning up (their owner process is gone); return them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{PREFIX}*"):
        if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            continue
        try:
            owner = json.loads((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            if time.time() - folder.stat().st_mtime < CREATION_GRACE_SECONDS:
                continue
            owner = {}
        pid = owner.get("pid")
        if isinstance(pid, int) and owner.get("start") is not None and _start_time(pid) == owner["start"]:
            continue  # its run is still going
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
