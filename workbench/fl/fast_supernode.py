"""`flower-supernode` with short, adaptive polling: `python -m workbench.fl.fast_supernode ARGS`.

flwr 1.41's SuperNode sleeps a hard-coded 3 s whenever the SuperLink has no
message for it and 0.5 s while waiting for a reply, and pulls message objects
with a 1 s → 10 s back-off; there is no flag for any of it. That alone makes a
round take 13–19 s on loopback. This launcher swaps the `time` module that
`flwr.supernode.start_client_internal` sees for one whose long sleeps become
short polls for a while after each message, backing off to 1 s when idle, and
shortens the object-pull back-off. Everything else is Flower's own SuperNode.
Pinned to flwr 1.41 (constraints.txt); tests/fl/test_deployment.py exercises it.
"""

from __future__ import annotations

import os
import sys
import time as real_time
import types
from typing import Any

import flwr.supernode.start_client_internal as supernode_loop

POLL = float(os.environ.get("WORKBENCH_POLL", "0.1"))
IDLE_CAP = 1.0
HOT_SECONDS = 10.0
_last_message = [real_time.monotonic()]


def _sleep(seconds: float) -> None:
    """Short polls within HOT_SECONDS of the last message; exponential back-off to IDLE_CAP after."""
    if seconds < 3:
        real_time.sleep(min(seconds, POLL))
        return
    idle = real_time.monotonic() - _last_message[0]
    real_time.sleep(POLL if idle < HOT_SECONDS else min(IDLE_CAP, POLL * 2 ** ((idle - HOT_SECONDS) / 2)))


def _patch() -> None:
    shim = types.ModuleType("time")
    shim.__dict__.update({name: getattr(real_time, name) for name in dir(real_time) if not name.startswith("__")})
    shim.sleep = _sleep  # type: ignore[attr-defined]
    supernode_loop.time = shim  # type: ignore[attr-defined]

    pull_message = supernode_loop._pull_and_store_message  # noqa: SLF001

    def pull_and_note(*args: Any, **kwargs: Any) -> Any:
        run_id = pull_message(*args, **kwargs)
        if run_id is not None:
            _last_message[0] = real_time.monotonic()
        return run_id

    supernode_loop._pull_and_store_message = pull_and_note  # noqa: SLF001
    pull_objects = supernode_loop.pull_objects  # type: ignore[attr-defined]  # a name the loop imports for itself: patched where it looks

    def pull_objects_quickly(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("initial_backoff", POLL / 5)
        kwargs.setdefault("backoff_cap", 0.25)
        return pull_objects(*args, **kwargs)

    supernode_loop.pull_objects = pull_objects_quickly  # type: ignore[attr-defined]  # as above


if __name__ == "__main__":
    _patch()
    from flwr.supernode.cli import flower_supernode

    sys.argv[0] = "flower-supernode"
    flower_supernode()
