"""Where the server finds recipes and writes notebooks and runs: the package's recipes and the Jupyter workspace.

Recipes are named to the browser by a `ref` (`package/flagship.yaml`,
`workspace/lab/mine.recipe.yaml`), never by an absolute path, and every path
the browser sends is resolved inside the workspace root: the REST API can read
and write only where Jupyter's own file browser can.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import workbench

PACKAGE, WORKSPACE = "package", "workspace"
WORKSPACE_PATTERN = "*.recipe.yaml"
SKIPPED_DIRS = {"node_modules", "__pycache__", "runs", "site-packages"}
MAX_SCAN_DEPTH = 4


class WorkspaceError(ValueError):
    """A ref or path the browser sent does not name a file the workspace may use."""


@dataclass(frozen=True)
class RecipeFile:
    ref: str
    source: str
    file: Path
    display: str


def package_recipes_dir() -> Path | None:
    """The shipped recipes: the source checkout's recipes/ (editable installs), else the wheel's shared copy."""
    checkout = Path(workbench.__file__).resolve().parents[1]
    for candidate in (checkout / "recipes", Path(sys.prefix) / "share" / "ppml-workbench" / "recipes"):
        if candidate.is_dir() and (candidate != checkout / "recipes" or (checkout / "pyproject.toml").is_file()):
            return candidate
    return None


class Workspace:
    def __init__(self, root: Path, package_dir: Path | None = None) -> None:
        self.root = root.resolve()
        self.package_dir = package_dir if package_dir is not None else package_recipes_dir()

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def recipes(self) -> list[RecipeFile]:
        """Package recipes first (by name), then the workspace's *.recipe.yaml (by path)."""
        found = []
        if self.package_dir is not None:
            for file in sorted(self.package_dir.glob("*.yaml")):
                found.append(RecipeFile(f"{PACKAGE}/{file.name}", PACKAGE, file, file.name))
        for file in sorted(self._scan(self.root, 0)):
            rel = file.relative_to(self.root).as_posix()
            found.append(RecipeFile(f"{WORKSPACE}/{rel}", WORKSPACE, file, rel))
        return found

    def recipe(self, ref: str) -> RecipeFile:
        source, _, rest = ref.partition("/")
        if source == PACKAGE and self.package_dir is not None:
            file = self.package_dir / rest
            if "/" not in rest and file.suffix == ".yaml" and file.is_file():
                return RecipeFile(ref, PACKAGE, file, rest)
        elif source == WORKSPACE:
            file = self.path(rest)
            if file.name.endswith(".recipe.yaml") and file.is_file():
                return RecipeFile(ref, WORKSPACE, file, rest)
        raise WorkspaceError(f"no recipe {ref!r}: expected package/NAME.yaml or workspace/PATH.recipe.yaml")

    def path(self, relative: str) -> Path:
        """A path the browser named, relative to the workspace root; refused if it leaves the root."""
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise WorkspaceError(f"{relative!r} is outside the workspace")
        return candidate

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def free_path(self, folder: Path, stem: str, suffix: str) -> Path:
        """folder/stem.suffix, or stem-1, stem-2, ... if taken: never overwrite a researcher's notebook."""
        candidate, n = folder / f"{stem}{suffix}", 0
        while candidate.exists():
            n += 1
            candidate = folder / f"{stem}-{n}{suffix}"
        return candidate

    def _scan(self, folder: Path, depth: int) -> list[Path]:
        found = []
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return found
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False) and depth < MAX_SCAN_DEPTH and entry.name not in SKIPPED_DIRS:
                found += self._scan(Path(entry.path), depth + 1)
            elif entry.is_file() and Path(entry.name).match(WORKSPACE_PATTERN):
                found.append(Path(entry.path))
        return found
