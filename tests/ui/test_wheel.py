"""`pip wheel .` carries the prebuilt extension; a fresh environment with only that wheel shows it enabled and OK."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.live import private_dir
from tests.ui.conftest import ARTIFACTS
from workbench.subprocess_env import for_another_python

ROOT = Path(__file__).resolve().parents[2]
DATA = "ppml_workbench-0.1.0.data/data"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with private_dir("wheel") as folder:
        yield folder


@pytest.fixture(scope="module")
def wheel(scratch: Path) -> Path:
    out = scratch / "dist"
    pinned = {**_clean_env(Path(sys.prefix)), "PIP_CONSTRAINT": str(ROOT / "constraints.txt")}  # the isolated build environment gets the pinned hatchling too
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)], cwd=ROOT, capture_output=True, text=True, env=pinned
    )
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    (built,) = out.glob("ppml_workbench-*.whl")
    return built


def _clean_env(env_dir: Path) -> dict[str, str]:
    """This process's environment without what could point Python, pip or Jupyter elsewhere.

    Earlier tests in the same session may leave e.g. PYTHONPATH set (Ray does), which would let pip see this
    suite's packages as installed and skip them; only the fresh environment is on PATH.
    """
    return for_another_python(PATH=f"{env_dir / 'bin'}:/usr/bin:/bin")


def test_the_wheel_holds_the_prebuilt_extension_and_the_server_switch(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    labextension = f"{DATA}/share/jupyter/labextensions/ppml-workbench"
    assert f"{labextension}/package.json" in names
    assert any(re.fullmatch(rf"{labextension}/static/remoteEntry\.[0-9a-f]+\.js", name) for name in names)
    assert f"{DATA}/etc/jupyter/jupyter_server_config.d/ppml_workbench.json" in names
    assert f"{DATA}/share/ppml-workbench/recipes/flagship.yaml" in names
    assert not [name for name in names if "node_modules" in name or name.endswith(".ts") and not name.endswith(".d.ts")]


def test_a_fresh_environment_with_only_the_wheel_lists_the_extension_enabled_and_ok(wheel: Path, scratch: Path) -> None:
    env_dir = scratch / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    clean = _clean_env(env_dir)
    # uv (pinned in constraints.txt) resolves the wheel's own metadata as pip does, against the same constraints, and
    # installs in parallel: seconds where pip took two minutes of the suite.
    uv = Path(sys.prefix) / "bin" / "uv"
    install = subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(python), "-c", str(ROOT / "constraints.txt"), str(wheel)],
        capture_output=True,
        text=True,
        env=clean,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "wheel-install.log").write_text(f"exit {install.returncode}\n{install.stdout}\n{install.stderr}")
    assert install.returncode == 0, f"pip install of the wheel failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}"
    assert (env_dir / "bin" / "jupyter").is_file(), f"pip installed no jupyter command; see {ARTIFACTS / 'wheel-install.log'}"
    listing = subprocess.run([str(env_dir / "bin" / "jupyter"), "labextension", "list"], capture_output=True, text=True, env=clean, cwd=scratch, check=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"ppml-workbench v0\.1\.0 enabled\s+OK", text), text
    assert str(env_dir) in text, "the extension is found in the fresh environment, not elsewhere"
    servers = subprocess.run(
        [str(env_dir / "bin" / "jupyter"), "server", "extension", "list"], capture_output=True, text=True, env=clean, cwd=scratch, check=True
    )
    assert re.search(r"workbench\.server\s+enabled", re.sub(r"\x1b\[[0-9;]*m", "", servers.stdout + servers.stderr))
    (ARTIFACTS / "labextension-list.txt").write_text(text)
    print(text)


def test_the_wheel_is_small(wheel: Path) -> None:
    """The prebuilt extension is a few hundred KB of JavaScript, not node_modules: a regression here means a packaging leak."""
    print(f"{wheel.name}: {wheel.stat().st_size / 1e6:.2f} MB")
    assert wheel.stat().st_size < 20e6
