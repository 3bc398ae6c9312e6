"""The provider's own limit on how many identifiers (or, for encrypted inference, rows) one requester may have it evaluate.

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
    def __init__(
        self, limit: int, requester: str, provider: str, *, used: int = 0, unit: str = "identifiers", field: str = "max_queries_per_requester"
    ) -> None:
        """`used`: what the requester spent before (a budget kept across steps); `unit` and `field` name what is counted and
        the recipe field that sets the cap, in the refusal."""
        if limit < 1:
            raise ValueError(f"an evaluation cap is at least 1, got {limit}")
        self.limit, self.requester, self.provider = limit, requester, provider
        self.used, self.unit, self.field = used, unit, field
        self._lock = threading.Lock()  # ECDH-PSI processes a requester's chunks on several threads

    @property
    def left(self) -> int:
        return self.limit - self.used

    def charge(self, count: int) -> None:
        """Take `count` evaluations, or refuse them all before any is made."""
        with self._lock:
            if count < 0 or count > self.left:
                raise EvaluationBudgetError(
                    f"{self.provider!r} refuses to evaluate {count} {self.unit} for {self.requester!r}: its cap is {self.limit} per "
                    f"requester and {self.used} are used; raise {self.field} if the provider agrees to a larger set"
                )
            self.used += count
