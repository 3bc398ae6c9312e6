"""The environment for a process that runs another Python (syft's own environment, a fresh wheel install).

This process's environment may point Python at this suite's packages: Ray sets PYTHONPATH when it starts, a
notebook's kernel carries its virtual environment. A Python with pins of its own (syft 0.9.5 needs numpy 1.24)
then imports the wrong numpy and fails deep inside its own import, so those variables are left out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LEAKS = ("JUPYTER", "PYTHON", "VIRTUAL_ENV", "PIP_TARGET", "PIP_PREFIX", "PIP_USER", "CONDA")


def for_another_python(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """`base` (this process's environment by default) without what would point another Python elsewhere, plus `extra`."""
    source = os.environ if base is None else base
    return {key: value for key, value in source.items() if not key.startswith(LEAKS)} | extra
