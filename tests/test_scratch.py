"""Private scratch folders: owner-only, removed on every way out, and swept after a killed run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from workbench.scratch import OWNER_FILE, PREFIX, private_file, private_folder, sweep_stale, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_and_files_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with private_folder("fl") as folder:
        key = write_private(folder / "site" / "ckks-context", b"secret")
        with private_file(folder / "site" / "table.parquet") as handle:
            handle.write(b"rows")
        assert folder.parent == tmp_path and mode(folder) == 0o700 and mode(folder / "site") == 0o700
        assert mode(key) == 0o600 and mode(folder / "site" / "table.parquet") == 0o600
    assert not folder.exists()


def test_a_planted_file_or_symlink_is_never_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep")
    (tmp_path / "planted").symlink_to(outside)
    with pytest.raises(FileExistsError):
        write_private(tmp_path / "planted", b"secret")
    assert outside.read_text() == "keep"


def test_the_folder_goes_when_the_block_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(KeyboardInterrupt), private_folder("fl") as folder:
        write_private(folder / "rows", b"rows")
        raise KeyboardInterrupt
    assert not folder.exists()


def test_sweep_removes_folders_of_dead_runs_only(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    for name, pid in (("dead", int(dead.stdout)), ("alive", os.getpid())):
        folder = tmp_path / f"{PREFIX}{name}"
        folder.mkdir(mode=0o700)
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19] if name == "alive" else "1"
        (folder / OWNER_FILE).write_text(json.dumps({"pid": pid, "start": start}))
    (tmp_path / "unrelated").mkdir()
    assert sweep_stale(tmp_path) == [tmp_path / f"{PREFIX}dead"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{PREFIX}alive", "unrelated"])
