"""Where the server finds recipes and writes notebooks and runs: the package's recipes and the Jupyter workspace.

Recipes are named to the browser by a `ref` (`package/flagship.yaml`,
`workspace/lab/mine.recipe.yaml`), never by an absolute path, and every path
the browser sends is resolved inside the workspace root: the REST API can read
and write only where Jupyter's own file browser can.

A workspace may hold symbolic links nobody here made (an unpacked archive, a
cloned repository), so every file operation goes through this class: a path
whose links resolve outside the root is refused, and writing never follows a
link at the last step, even one that points inside (`open_for_write`).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import workbench
from workbench.errors import WorkbenchError
from workbench.recipe import Recipe, parse_recipe
from workbench.recipe_problems import Problem, RecipeError
from workbench.server.limits import DEFAULT_MAX_RECIPE_BYTES, how_to_raise

PACKAGE, WORKSPACE = "package", "workspace"
WORKSPACE_PATTERN = "*.recipe.yaml"
SKIPPED_DIRS = {"node_modules", "__pycache__", "runs", "site-packages"}
MAX_SCAN_DEPTH = 4
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class WorkspaceError(WorkbenchError, ValueError):
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
    def __init__(self, root: Path, package_dir: Path | None = None, max_recipe_bytes: int = DEFAULT_MAX_RECIPE_BYTES) -> None:
        self.root = root.resolve()
        self.package_dir = package_dir if package_dir is not None else package_recipes_dir()
        self.max_recipe_bytes = max_recipe_bytes

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

    def recipe_text(self, file: Path) -> str:
        """The recipe's YAML, refused before parsing when it is over the size budget: a recipe is a few kB, never a data file."""
        try:
            with file.open("rb") as handle:
                data = handle.read(self.max_recipe_bytes + 1 if self.max_recipe_bytes else -1)
                size = os.fstat(handle.fileno()).st_size
            if self.max_recipe_bytes and len(data) > self.max_recipe_bytes:
                raise RecipeError(
                    str(file),
                    [
                        Problem(
                            (),
                            (
                                f"the recipe file is {max(size, len(data)):,} bytes, over this server's budget of {self.max_recipe_bytes:,} bytes per recipe; "
                                f"keep data in a dataset file the recipe names, or raise the budget ({how_to_raise('max_recipe_bytes')})"
                            ),
                        )
                    ],
                )
            return data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise RecipeError(str(file), [Problem((), f"cannot read the recipe file: {error}", None)]) from None

    def load(self, file: Path) -> Recipe:
        """load_recipe with the size budget: the one way the server parses a recipe file."""
        return parse_recipe(self.recipe_text(file), str(file))

    def path(self, relative: str) -> Path:
        """A path the browser named, relative to the workspace root; refused if it, or a link on the way, leaves the root."""
        return self.inside(self.root / relative, relative)

    def inside(self, path: Path, shown: str | None = None) -> Path:
        """`path` with every link resolved, refused unless that stays under the root: a planted link must not reach beyond it."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise WorkspaceError(
                f"{shown or path!s} is outside the workspace (it resolves to {resolved}); the workbench reads and writes only under {self.root}"
            )
        return resolved

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def free_path(self, folder: Path, stem: str, suffix: str) -> Path:
        """folder/stem.suffix, or stem-1, stem-2, ... if taken: never overwrite a researcher's notebook, nor take a link's name."""
        folder = self.inside(folder)
        candidate, n = folder / f"{stem}{suffix}", 0
        while os.path.lexists(candidate):
            n += 1
            candidate = folder / f"{stem}-{n}{suffix}"
        return candidate

    def write_text(self, path: Path, text: str, *, new: bool = False) -> Path:
        """Write a text file through `open_for_write`; return where it went."""
        with self.open_for_write(path, new=new) as handle:
            handle.write(text.encode("utf-8"))
        return self.inside(path.parent) / path.name

    def open_for_write(self, path: Path, *, new: bool = False) -> BinaryIO:
        """Open a workspace file for writing, truncated; with `new`, only if nothing has that name yet.

        The folder must resolve inside the root and is then walked from the root without following links, so it
        cannot be swapped for one midway; the file itself is opened with O_NOFOLLOW, so a link there (even one
        pointing inside) is refused instead of followed, and a hard-linked or special file is refused too.
        """
        folder = self.inside(path.parent, path.parent.as_posix())
        shown = (folder / path.name).relative_to(self.root).as_posix()
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_EXCL if new else 0)
        dir_fd = self._open_dir(folder, create=False)
        try:
            fd = os.open(path.name, flags, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            raise WorkspaceError(f"{shown} already exists; the workbench does not overwrite it") from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise WorkspaceError(
                    f"{shown} is a symbolic link; the workbench does not write through links (it could overwrite a file "
                    "elsewhere): remove or rename the link and try again"
                ) from None
            raise WorkspaceError(f"cannot write {shown}: {error.strerror}") from None
        finally:
            os.close(dir_fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            os.close(fd)
            raise WorkspaceError(
                f"{shown} is not a plain file of its own ({'a hard link' if stat.S_ISREG(info.st_mode) else 'a special file'}); "
                "the workbench writes only plain files: remove it and try again"
            )
        os.ftruncate(fd, 0)
        return os.fdopen(fd, "wb")

    def make_dir(self, path: Path, *, new: bool = False) -> Path:
        """Create a folder in the workspace (and its parents) without following links; with `new`, it must not exist yet."""
        folder = self.inside(path.parent, path.parent.as_posix())
        dir_fd = self._open_dir(folder, create=True)
        try:
            os.mkdir(path.name, 0o777, dir_fd=dir_fd)
        except FileExistsError:
            if new or not stat.S_ISDIR(os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise WorkspaceError(f"{(folder / path.name).relative_to(self.root).as_posix()} already exists; try again") from None
        finally:
            os.close(dir_fd)
        return folder / path.name

    def _open_dir(self, folder: Path, *, create: bool) -> int:
        """A descriptor of `folder` (resolved, inside the root), reached from the root one real directory at a time."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in folder.relative_to(self.root).parts:
                if create:
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    raise WorkspaceError(
                        f"{folder.relative_to(self.root).as_posix()}: {part!r} is not a plain folder ({error.strerror}); did a link replace it?"
                    ) from None
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _scan(self, folder: Path, depth: int) -> list[Path]:
        found: list[Path] = []
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return found
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False) and depth < MAX_SCAN_DEPTH and entry.name not in SKIPPED_DIRS:
                found += self._scan(Path(entry.path), depth + 1)
            elif entry.is_file() and Path(entry.name).match(WORKSPACE_PATTERN) and self._stays_inside(Path(entry.path)):
                found.append(Path(entry.path))
        return found

    def _stays_inside(self, path: Path) -> bool:
        try:
            self.inside(path)
        except WorkspaceError:
            return False
        return True
