"""The provider's own limit on how many identifiers one requester may have it evaluate.

Every PSI evaluation answers "is this identifier among yours?" (and, in labeled
PSI, opens its payload). Left to the requester's declaration, a requester could
declare 2^63 and enumerate the identifier space (names × birth dates are low
entropy). So the provider fixes a cap per requester for the whole step, over
every pass and session, charges each declaration or request against it before
evaluating anything, and the report states the cap and what was used.
"""

from __future__ import annotations

import threading

from workbench.errors import WorkbenchError


class EvaluationBudgetError(WorkbenchError, ValueError):
    """A requester asked the provider to evaluate more identifiers than the provider allows it."""


class EvaluationBudget:
    def __init__(self, limit: int, requester: str, provider: str) -> None:
        if limit < 1:
            raise ValueError(f"an evaluation cap is at least 1, got {limit}")
        self.limit, self.requester, self.provider = limit, requester, provider
        self.used = 0
        self._lock = threading.Lock()  # ECDH-PSI processes a requester's chunks on several threads

    @property
    def left(self) -> int:
        return self.limit - self.used

    def charge(self, count: int) -> None:
        """Take `count` evaluations, or refuse them all before any is made."""
        with self._lock:
            if count < 0 or count > self.left:
                raise EvaluationBudgetError(
                    f"{self.provider!r} refuses to evaluate {count} identifiers for {self.requester!r}: its cap is {self.limit} per "
                    f"requester and {self.used} are used; raise max_queries_per_requester if the provider agrees to a larger set"
                )
            self.used += count
