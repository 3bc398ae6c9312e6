"""What a run ran on: enough to reproduce it, or to tell why a rerun differs."""

from __future__ import annotations

import hashlib
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from workbench import __version__
from workbench.ledger import Ledger
from workbench.recipe import Recipe

if TYPE_CHECKING:  # annotations only: the CLI imports this module (through the runner) and need not load polars
    import polars as pl

DISTRIBUTION = "ppml-workbench"


def table_fingerprint(dataset: str, part: str, frame: pl.DataFrame) -> dict[str, Any]:
    """Shape and SHA-256 of a table's CSV form: stable across polars versions, unlike its in-memory hash."""
    digest = hashlib.sha256(frame.write_csv().encode()).hexdigest()
    return {"dataset": dataset, "part": part, "rows": frame.height, "columns": frame.width, "sha256": digest}


def package_versions() -> dict[str, str]:
    """Versions of the workbench's direct dependencies as installed now."""
    from packaging.requirements import Requirement  # ~15 ms of imports that only writing a manifest needs

    versions = {DISTRIBUTION: __version__}
    for requirement in metadata.requires(DISTRIBUTION) or []:
        parsed = Requirement(requirement)
        if parsed.marker and not parsed.marker.evaluate({"extra": ""}):
            continue
        try:
            versions[parsed.name] = metadata.version(parsed.name)
        except metadata.PackageNotFoundError:
            versions[parsed.name] = "not installed"
    return versions


def build_manifest(recipe: Recipe, fingerprints: dict[str, dict[str, Any]], timings: dict[str, float], ledger: Ledger) -> dict[str, Any]:
    return {
        "recipe": {"name": recipe.name, "hash": recipe.hash()},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seeds": {
            "recipe": recipe.seed,
            "derivation": "numpy default_rng([seed, crc32(step name), crc32(party), ...])",
        },
        "data": fingerprints,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "timings_seconds": {name: round(seconds, 4) for name, seconds in timings.items()},
        "ledger": {"messages": len(ledger.messages), "bytes": ledger.total_bytes()},
    }
