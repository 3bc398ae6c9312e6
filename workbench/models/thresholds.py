"""A decision threshold chosen by a rule on the validation rows, then applied to the test rows.

A threshold picked on the rows it is then scored on flatters the model (it is fitted to
their noise). So a rule (Youden's J, or a target sensitivity) runs at each site on that
site's validation part, per model, and the test rows only score the threshold it chose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import numpy as np


class ThresholdRule(BaseModel):
    """How each site chooses a model's threshold on its validation rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["youden", "sensitivity"] = Field(
        "youden",
        description="youden: the threshold maximizing sensitivity + specificity − 1; sensitivity: the highest threshold reaching `target` sensitivity.",
    )
    target: float | None = Field(None, gt=0.0, le=1.0, description="The sensitivity to reach (rule sensitivity only).")

    @model_validator(mode="after")
    def _target_with_its_rule(self) -> ThresholdRule:
        if (self.rule == "sensitivity") != (self.target is not None):
            raise ValueError("rule sensitivity needs a target (e.g. target: 0.9), and only it takes one")
        return self

    def choose(self, y: np.ndarray, p: np.ndarray) -> float | None:
        """The threshold the rule picks on rows (y, p); None when the rows hold a single class."""
        import numpy as np

        positives, negatives = int(np.sum(y == 1)), int(np.sum(y != 1))
        if positives == 0 or negatives == 0:
            return None
        candidates = np.unique(p)[::-1]  # predicting positive at p >= t, highest t first
        order = np.argsort(-p, kind="mergesort")
        ranked, hits = p[order], (y[order] == 1)
        reached = np.searchsorted(-ranked, -candidates, side="right")  # rows at or above each candidate
        sensitivity = np.cumsum(hits)[reached - 1] / positives
        false_positive_rate = np.cumsum(~hits)[reached - 1] / negatives
        if self.rule == "youden":
            return float(candidates[int(np.argmax(sensitivity - false_positive_rate))])
        assert self.target is not None
        return float(candidates[int(np.argmax(sensitivity >= self.target - 1e-12))])
