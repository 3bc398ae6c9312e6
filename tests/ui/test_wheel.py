"""`pip wheel .` carries the prebuilt extension; a fresh environment with only that wheel shows it enabled and OK."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = "ppml_workbench-0.1.0.data/data"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    (built,) = out.glob("ppml_workbench-*.whl")
    return built


def test_the_wheel_holds_the_prebuilt_extension_and_the_server_switch(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    labextension = f"{DATA}/share/jupyter/labextensions/ppml-workbench"
    assert f"{labextension}/package.json" in names
    assert any(re.fullmatch(rf"{labextension}/static/remoteEntry\.[0-9a-f]+\.js", name) for name in names)
    assert f"{DATA}/etc/jupyter/jupyter_server_config.d/ppml_workbench.json" in names
    assert f"{DATA}/share/ppml-workbench/recipes/flagship.yaml" in names
    assert not [name for name in names if "node_modules" in name or name.endswith(".ts") and not name.endswith(".d.ts")]


def test_a_fresh_environment_with_only_the_wheel_lists_the_extension_enabled_and_ok(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), str(wheel)],
                             capture_output=True, text=True)
    assert install.returncode == 0, f"pip install of the wheel failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}"
    # Only the fresh environment on PATH: the listing must not lean on this checkout or its node_modules.
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV"))}
    clean["PATH"] = f"{env_dir / 'bin'}:/usr/bin:/bin"
    listing = subprocess.run([str(env_dir / "bin" / "jupyter"), "labextension", "list"], capture_output=True, text=True, env=clean, cwd=tmp_path, check=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"ppml-workbench v0\.1\.0 enabled\s+OK", text), text
    assert str(env_dir) in text, "the extension is found in the fresh environment, not elsewhere"
    servers = subprocess.run([str(env_dir / "bin" / "jupyter"), "server", "extension", "list"], capture_output=True, text=True, env=clean, cwd=tmp_path, check=True)
    assert re.search(r"workbench\.server\s+enabled", re.sub(r"\x1b\[[0-9;]*m", "", servers.stdout + servers.stderr))
    (tmp_path / "labextension-list.txt").write_text(text)
    print(text)
