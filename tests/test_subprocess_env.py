"""Another Python's environment leaves out what points Python at this one's packages."""

from __future__ import annotations

from workbench.subprocess_env import for_another_python


def test_python_and_environment_variables_are_left_out_and_extras_added() -> None:
    base = {"PYTHONPATH": "/here/site-packages", "VIRTUAL_ENV": "/here", "CONDA_PREFIX": "/c", "HOME": "/root", "PATH": "/bin"}
    assert for_another_python(base, TMPDIR="/private") == {"HOME": "/root", "PATH": "/bin", "TMPDIR": "/private"}
